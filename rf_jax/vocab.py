"""Prefix-stable vocabulary: specials | phase-1 symbols | (later phases) text tokens.

Phase-1 text is a string of single-character symbols, so tokenisation is one id per
character. Ids never move once assigned: later phases may only append, and a
vocabulary saved in a checkpoint can be checked against a new one with
`is_prefix_of`.
"""
from __future__ import annotations

import dataclasses
import string

PAD, BOS, EOS, SEP, ANS, UNK = "<pad>", "<bos>", "<eos>", "<sep>", "<ans>", "<unk>"
SPECIALS = (PAD, BOS, EOS, SEP, ANS, UNK)
# SEP ends the prompt; ANS ends an optional step-by-step trace and starts the answer.

OPERATORS = "+-*/%=<>()[]{},.:;|&^!?#@_~$' \n"
SYMBOLS = tuple(string.digits + string.ascii_lowercase + string.ascii_uppercase + OPERATORS)


@dataclasses.dataclass(frozen=True)
class Vocab:
  tokens: tuple[str, ...]

  def __post_init__(self):
    if len(set(self.tokens)) != len(self.tokens):
      raise ValueError("vocabulary has duplicate tokens")
    object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

  @property
  def size(self) -> int:
    return len(self.tokens)

  def id(self, token: str) -> int:
    return self._ids[token]

  @property
  def pad_id(self) -> int:
    return self._ids[PAD]

  @property
  def bos_id(self) -> int:
    return self._ids[BOS]

  @property
  def eos_id(self) -> int:
    return self._ids[EOS]

  @property
  def sep_id(self) -> int:
    return self._ids[SEP]

  @property
  def ans_id(self) -> int:
    return self._ids[ANS]

  def encode(self, text: str) -> list[int]:
    try:
      return [self._ids[c] for c in text]
    except KeyError as e:
      raise ValueError(
          f"character {e.args[0]!r} is not in the vocabulary; tasks may only use "
          f"rf_jax.vocab.SYMBOLS") from None

  def decode(self, ids, stop_at_eos: bool = True) -> str:
    out = []
    for i in ids:
      i = int(i)
      if stop_at_eos and i == self.eos_id:
        break
      if 0 <= i < self.size and self.tokens[i] not in SPECIALS:
        out.append(self.tokens[i])
    return "".join(out)

  def is_prefix_of(self, other: "Vocab") -> bool:
    return other.tokens[: self.size] == self.tokens

  def to_json(self) -> dict:
    return {"tokens": list(self.tokens)}

  @classmethod
  def from_json(cls, d: dict) -> "Vocab":
    return cls(tuple(d["tokens"]))


def phase1_vocab() -> Vocab:
  return Vocab(SPECIALS + SYMBOLS)
