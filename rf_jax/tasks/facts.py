"""A generated knowledge base and multi-hop questions over it.

Entities have random lowercase names ("qzv"); relations are uppercase letters ("A".."H");
every (entity, relation) has exactly one object, so a fact reads "qzvBmoa" (subject,
relation, object) and a question "qzvBD" asks for D(B(qzv)). A k-hop question is answered
one hop at a time: resolving its first relation rewrites it into a (k-1)-hop question about
the object ("qzvBD" -> "moaD"), and the last hop yields the answer entity ("moaD" -> "xfe").
The fact needed at hop 2 names the answer of hop 1, so it can only be found after hop 1.

A knowledge base is a pure function of (seed, sizes): another seed gives a fresh bank of
facts about new entities with the same relations.
"""
from __future__ import annotations

import dataclasses
import string

import numpy as np

LETTERS = string.ascii_lowercase
RELATIONS = string.ascii_uppercase


@dataclasses.dataclass(frozen=True)
class KnowledgeBase:
  names: tuple[str, ...]   # entity i is called names[i]
  objects: np.ndarray      # [n_entities, n_relations]: the object of (entity, relation)
  seed: int

  @property
  def n_entities(self) -> int:
    return len(self.names)

  @property
  def n_relations(self) -> int:
    return self.objects.shape[1]

  @property
  def name_len(self) -> int:
    return len(self.names[0])

  def fact(self, entity: int, relation: int) -> str:
    return self.names[entity] + RELATIONS[relation] + self.names[self.objects[entity, relation]]

  def facts(self) -> list[str]:
    """Every fact, row e * n_relations + r for (entity e, relation r)."""
    return [self.fact(e, r) for e in range(self.n_entities) for r in range(self.n_relations)]

  def fact_row(self, entity: int, relation: int) -> int:
    return entity * self.n_relations + relation

  def parse(self, query: str) -> tuple[int, list[int]] | None:
    """(entity, relations) of a query like "qzvBD", or None if it names no known entity."""
    n = self.name_len
    ids = self._ids()
    if len(query) < n or query[:n] not in ids or any(c not in RELATIONS[:self.n_relations]
                                                      for c in query[n:]):
      return None
    return ids[query[:n]], [RELATIONS.index(c) for c in query[n:]]

  def _ids(self) -> dict[str, int]:
    if "_by_name" not in self.__dict__:
      object.__setattr__(self, "_by_name", {s: i for i, s in enumerate(self.names)})
    return self.__dict__["_by_name"]

  def question(self, entity: int, relations: list[int]) -> str:
    return self.names[entity] + "".join(RELATIONS[r] for r in relations)

  def answer(self, entity: int, relations: list[int]) -> str:
    for r in relations:
      entity = self.objects[entity, r]
    return self.names[entity]

  def hops(self, entity: int, relations: list[int]) -> list[tuple[str, str, int]]:
    """The (query, what the reasoner writes, supporting fact row) of every hop."""
    out = []
    for i, r in enumerate(relations):
      query = self.question(entity, relations[i:])
      nxt = int(self.objects[entity, r])
      out.append((query, self.question(nxt, relations[i + 1:]), self.fact_row(entity, r)))
      entity = nxt
    return out


def generate(seed: int, n_entities: int, n_relations: int = 4, name_len: int = 3) -> KnowledgeBase:
  if not 1 <= n_relations <= len(RELATIONS):
    raise ValueError(f"n_relations must be in 1..{len(RELATIONS)}, got {n_relations}")
  if n_entities < 2 or n_entities > len(LETTERS) ** name_len // 2:
    raise ValueError(f"n_entities={n_entities} needs 2 <= n <= {len(LETTERS) ** name_len // 2} "
                     f"for names of {name_len} letters; raise name_len")
  rng = np.random.default_rng([seed, n_entities, n_relations, name_len])
  names: dict[str, None] = {}
  while len(names) < n_entities:
    names["".join(rng.choice(list(LETTERS), name_len))] = None
  # object != subject, so no question loops back onto itself in one hop
  objects = (np.arange(n_entities)[:, None] + rng.integers(1, n_entities, (n_entities, n_relations))
             ) % n_entities
  return KnowledgeBase(tuple(names), objects.astype(np.int32), seed)


def questions(kb: KnowledgeBase, rng: np.random.Generator, n: int, hops: int
              ) -> list[tuple[int, list[int]]]:
  """n random (entity, relations) questions of `hops` hops."""
  ents = rng.integers(0, kb.n_entities, n)
  rels = rng.integers(0, kb.n_relations, (n, hops))
  return [(int(e), [int(r) for r in rs]) for e, rs in zip(ents, rels)]
