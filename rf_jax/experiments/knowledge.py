"""python -m rf_jax.knowledge [--config=configs/knowledge.py[:tiny]] [--workdir=DIR]

Knowledge apart from reasoning, end to end, with one table at the end:
  1. retriever   a dual encoder trained contrastively on (question, supporting fact) pairs
                 drawn from ever new random knowledge bases (rf_jax/retriever.py);
  2. banks       the facts of the training banks and of a fresh bank (new entities, another
                 seed), encoded and saved as memory banks (rf_jax/memory.py);
  3. reasoner    a small-window transformer trained hop by hop with the retrieved facts
                 placed before the question: it rewrites "abcBD" into "xyzD" by reading the
                 fact "abcBxyz" (rf_jax/tasks/facts.py);
  4. full_context the same transformer without a window and without memory, trained on the
                 first training bank until the facts are in its weights;
  5. report      exact match by hops on the first training bank and on the fresh bank: the
                 reasoner with retrieval, the same reasoner without it, the full-context model;
                 and the retriever's recall@k.
Each stage saves its result in the workdir (<stage>/checkpoints through the trainer's
Checkpointer, <stage>/meta.json, bank folders); running the command again skips finished
stages.

The reasoner and the full-context model are trained by the library's trainer
(rf_jax.train.run): their rows come from the objective `knowledge_hops` registered here, which
builds each step's hop rows with the trained retriever and the banks, so the stages resume
from the trainer's checkpoints like any run. The retriever is a contrastive dual encoder, not
a language model: its small loop is built from the trainer's parts (optimizer and schedule
from rf_jax.train_state, workdir check, Checkpointer, MetricWriter).

Multi-hop answering is one loop (`answer`), used for evaluation: retrieve with the current
query, decode; an output that still ends in relations is the next query, so retrieval runs
again with it; an entity name is the answer. Training teaches each pass of this loop: the
rows are built by the same `Reader.prompts` from the same retrieval, with the true
intermediate query as input.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from rf_jax import config as config_lib
from rf_jax import memory, objectives, retriever as retr
from rf_jax import train as trainer
from rf_jax.checkpoint import Checkpointer, to_json
from rf_jax.data.packing import pack_row
from rf_jax.data.text import load_documents
from rf_jax.errors import ConfigError
from rf_jax.experiments import report as report_lib
from rf_jax.experiments.report import read_json
from rf_jax.metrics import MetricWriter, format_duration
from rf_jax.objectives.next_token import step_cost
from rf_jax.runs import load_run
from rf_jax.sampling import left_pad, sample
from rf_jax.sharding import DEFAULT_RULES, make_global_batch, make_mesh
from rf_jax.step import train_step
from rf_jax.tasks import facts
from rf_jax.train import ensure_writable
from rf_jax.train_state import make_optimizer, make_schedule, model_config
from rf_jax.vocab import ANS, BOS, EOS, SEP, UNK, Vocab, phase1_vocab

JOIN = ";"  # between retrieved facts


# --- text <-> ids -----------------------------------------------------------------------------

def query_ids(vocab: Vocab, query: str) -> list[int]:
  return [vocab.id(BOS)] + vocab.encode(query)  # <bos> marks a query for the retriever


def fact_ids(vocab: Vocab, fact: str) -> list[int]:
  return [vocab.id(SEP)] + vocab.encode(fact)   # <sep> marks a fact


def is_query(text: str, name_len: int) -> bool:
  """A reasoner output that still has relations to resolve (e.g. "xyzD")."""
  return len(text) > name_len and text[name_len:].isupper() and text[:name_len].islower()


# --- retrieval --------------------------------------------------------------------------------

@dataclasses.dataclass
class Reader:
  """Puts retrieved facts before the question: the reasoner's only input path."""
  vocab: Vocab
  graphdef: object
  params: dict
  top_k: int
  query_len: int

  def retrieve(self, bank: memory.MemoryBank, queries: list[str]) -> np.ndarray:
    """Bank rows [len(queries), top_k], best first."""
    ids = [query_ids(self.vocab, q) for q in queries]
    vecs = retr.encode(self.params, self.graphdef, ids, self.vocab.pad_id, length=self.query_len)
    n = len(vecs)
    vecs = np.pad(vecs, [(0, (1 << (n - 1).bit_length()) - n), (0, 0)])  # few compiled shapes
    return np.asarray(bank.search(vecs, self.top_k)[1])[:n]

  def prompts(self, bank: memory.MemoryBank | None, queries: list[str]) -> list[list[int]]:
    """<bos> fact ; fact ; ... <sep> query <ans>; no facts when `bank` is None."""
    rows = self.retrieve(bank, queries) if bank is not None else [[]] * len(queries)
    pad, join = self.vocab.pad_id, self.vocab.id(JOIN)
    out = []
    for q, rs in zip(queries, rows):
      mem: list[int] = []
      for r in rs:
        chunk = [int(t) for t in bank.chunks[r] if t != pad]
        mem += ([join] if mem else []) + chunk
      out.append([self.vocab.id(BOS)] + mem + [self.vocab.id(SEP)] + self.vocab.encode(q) +
                 [self.vocab.id(ANS)])
    return out


# --- stage 1: retriever -----------------------------------------------------------------------

def retriever_config(config, vocab_size: int) -> retr.RetrieverConfig:
  r = config.retriever
  return retr.RetrieverConfig(vocab_size=vocab_size, d_model=r.d_model, n_layers=r.n_layers,
                              n_heads=r.n_heads, mlp_dim=r.mlp_dim, dim=r.dim,
                              temperature=r.temperature)


def retriever_batch(config, vocab: Vocab, step: int):
  """(question, fact) pairs of one random knowledge base: every (entity, relation) once, so
  the in-batch negatives include the same entity's other facts and the same relation's."""
  kb_cfg = config.kb
  kb = facts.generate(1_000_000 + config.seed * 100_000 + step, config.retriever.batch_entities,
                      kb_cfg.n_relations, kb_cfg.name_len)
  rng = np.random.default_rng([config.seed, step])
  qs, fs = [], []
  for e in range(kb.n_entities):
    for r in range(kb.n_relations):
      extra = rng.integers(0, kb.n_relations, rng.integers(0, kb_cfg.max_hops))
      qs.append(query_ids(vocab, kb.question(e, [r, *extra])))
      fs.append(fact_ids(vocab, kb.fact(e, r)))
  q, ql = retr.pad_texts(qs, vocab.pad_id, 1 + kb_cfg.name_len + kb_cfg.max_hops)
  f, fl = retr.pad_texts(fs, vocab.pad_id, 2 + 2 * kb_cfg.name_len)
  return q, ql, f, fl


def train_retriever(config, cfg: retr.RetrieverConfig, vocab: Vocab, mesh, writer: MetricWriter):
  graphdef, params = retr.init(cfg, config.seed, mesh, DEFAULT_RULES)
  r = config.retriever
  schedule = make_schedule(r.learning_rate, r.warmup_steps, r.steps)
  tx = make_optimizer(schedule, 0.0, 0.9, 0.98, 1.0)
  state = {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}
  step_fn = jax.jit(functools.partial(retr.contrastive_step, graphdef=graphdef, tx=tx,
                                      temperature=cfg.temperature), donate_argnums=0)
  t0 = time.perf_counter()
  for step in range(r.steps):
    state, m = step_fn(state, retriever_batch(config, vocab, step))
    if (step + 1) % config.train.log_every == 0 or step + 1 == r.steps:
      m = {k: float(v) for k, v in m.items()}
      writer.write(step + 1, {f"retriever/{k}": v for k, v in m.items()})
      writer.console(f"retriever step {step + 1}/{r.steps} | loss {m['loss']:.4f} | in-batch "
                     f"acc {m['in_batch_accuracy']:.3f} | {format_duration(time.perf_counter() - t0)}")
  return graphdef, state["params"]


# --- stage 2: banks ---------------------------------------------------------------------------

def bank_specs(config) -> dict[str, tuple[int, int]]:
  """name -> (seed, entities) of every bank: training banks, the fresh one, a larger fresh one."""
  kb = config.kb
  specs = {f"train_{i}": (i + 1, kb.n_entities) for i in range(kb.train_banks)}
  specs["fresh"] = (kb.fresh_seed, kb.n_entities)
  specs["fresh_large"] = (kb.fresh_seed + 1, kb.large_entities)
  return specs


def make_kb(config, seed: int, n_entities: int) -> facts.KnowledgeBase:
  return facts.generate(seed, n_entities, config.kb.n_relations, config.kb.name_len)


def build_bank(kb: facts.KnowledgeBase, reader: Reader, path: str) -> dict:
  vocab = reader.vocab
  texts = kb.facts()
  chunks, _ = retr.pad_texts([vocab.encode(t) for t in texts], vocab.pad_id)
  keys = retr.encode(reader.params, reader.graphdef, [fact_ids(vocab, t) for t in texts],
                     vocab.pad_id)
  return memory.save(path, keys, chunks, source=f"rf_jax.tasks.facts seed {kb.seed}",
                     n_entities=kb.n_entities, n_relations=kb.n_relations)


def build_text_bank(workdir: str, files: str, out: str, chunk_len: int, mesh,
                    text_field: str = "text") -> dict:
  """A bank of text chunks (txt/jsonl/parquet/arrayrecord files) keyed by `workdir`'s retriever.
  Characters outside the vocabulary become <unk>."""
  vocab = phase1_vocab()
  rdir = os.path.join(workdir, "retriever")
  meta = read_json(os.path.join(rdir, "meta.json"))
  if not meta:
    raise ConfigError(f"no trained retriever in {workdir}; run `python -m rf_jax.knowledge "
                      f"--workdir={workdir}` first")
  graphdef, fresh = retr.init(retr.RetrieverConfig(**meta["config"]), 0, mesh, DEFAULT_RULES)
  params, _ = load_params(rdir, abstract_of(fresh))
  ids_of = lambda doc: [vocab._ids.get(c, vocab.id(UNK)) for c in doc]  # noqa: SLF001
  chunks = np.concatenate([memory.chunk_tokens(ids_of(d), chunk_len, vocab.pad_id)
                           for d in load_documents(files, text_field)])
  texts = [[vocab.id(SEP)] + [int(t) for t in row if t != vocab.pad_id] for row in chunks]
  keys = retr.encode(params, graphdef, texts, vocab.pad_id, length=chunk_len + 1)
  return memory.save(out, keys, chunks, source=files, retriever=rdir)


# --- stages 3 and 4: reasoner and full-context model --------------------------------------------

def hop_questions(kbs: list, rng: np.random.Generator, n: int, max_hops: int):
  """(bank index, queries, targets) of n single hops: a query of 1..max_hops relations and
  what the reasoner writes. Cheap: a resumed run replays these draws to its step."""
  b = int(rng.integers(0, len(kbs)))  # one bank per batch: one retrieval call
  kb = kbs[b]
  queries, targets = [], []
  for e, _ in facts.questions(kb, rng, n, 1):
    rels = [int(x) for x in rng.integers(0, kb.n_relations, rng.integers(1, max_hops + 1))]
    query, target, _ = kb.hops(e, rels)[0]
    queries.append(query)
    targets.append(target)
  return b, queries, targets


def hop_batch(reader: Reader, kbs: list, banks: list, rng: np.random.Generator, n: int,
              max_hops: int, seq_len: int) -> dict[str, np.ndarray]:
  """n single-hop training rows, with the facts `reader` retrieves from the hop's bank."""
  vocab = reader.vocab
  b, queries, targets = hop_questions(kbs, rng, n, max_hops)
  bank = banks[b]
  rows = []
  for prompt, target in zip(reader.prompts(bank, queries), targets):
    out = vocab.encode(target) + [vocab.id(EOS)]
    rows.append(pack_row([(prompt + out, [0] * len(prompt) + [1] * len(out))], seq_len,
                         vocab.pad_id))
  keys = ("inputs", "targets", "positions", "segment_ids", "loss_mask")
  return {k: np.stack([r[k] for r in rows]) for k in keys}


@objectives.register("knowledge_hops")
class HopRows(objectives.Objective):
  """Next-token training on hop rows whose facts a trained retriever finds in memory banks
  (`objective.use_memory`), or on the bare questions. The rows are made here, each step, from
  the knowledge experiment's config and workdir (`objective.knowledge`, `objective.workdir`)."""

  def __init__(self, ctx):
    super().__init__(ctx)
    o, k = ctx.config.objective, ml_collections.ConfigDict(ctx.config.objective.knowledge)
    self.k = k
    self.reader = load_reader(k, o.workdir, ctx.vocab, ctx.mesh)
    specs = bank_specs(k)
    self.kbs = [make_kb(k, *specs[n]) for n in o.banks]
    self.banks = ([memory.load(os.path.join(o.workdir, "banks", n), ctx.mesh, dim=k.retriever.dim)
                   for n in o.banks] if o.use_memory else [None] * len(o.banks))
    self.rng, self.drawn = np.random.default_rng([k.seed, len(o.stream)]), 0
    self._update = jax.jit(functools.partial(
        train_step, graphdef=ctx.graphdef, tx=ctx.tx, schedule=ctx.schedule,
        allowed=ctx.vocab.allowed()), donate_argnums=0)
    self.tokens, self.flops = step_cost(ctx.config, ctx.model)

  def step(self, state, step):
    t = self.ctx.config.train
    for _ in range(self.drawn, step):  # a resumed run: the question stream up to its step
      hop_questions(self.kbs, self.rng, t.batch_size, self.k.kb.max_hops)
    batch = hop_batch(self.reader, self.kbs, self.banks, self.rng, t.batch_size,
                      self.k.kb.max_hops, self.ctx.config.data.seq_len)
    self.drawn = step + 1
    state, metrics = self._update(state, make_global_batch(batch, self.ctx.mesh))
    return state, {**metrics, "tokens": self.tokens}, self.flops


def trainer_config(config, workdir: str, name: str, window: int, banks: list[str],
                   use_memory: bool, steps: int):
  """The trainer's config for the reasoner or the full-context model: phase 1's, with this
  experiment's model, optimizer and steps, and the hop rows as its objective. The trainer's
  own task stream (copy, level 1) is built but never read."""
  t = config.train
  c = config_lib.load("phase1.py")
  c.update(name=f"knowledge_{name}", seed=config.seed)
  c.model.update(**config.model.to_dict())
  c.model.attention_window = window
  c.data.update(tasks=("copy",), levels=(1, 1), seq_len=t.seq_len)
  c.curriculum.kind = "fixed"
  c.train.update(steps=steps, batch_size=t.batch_size, learning_rate=t.learning_rate,
                 warmup_steps=t.warmup_steps, end_lr_fraction=t.end_lr_fraction,
                 weight_decay=t.weight_decay, b1=t.b1, b2=t.b2, grad_clip=t.grad_clip,
                 log_every=t.log_every, eval_every=0, eval_levels=(),
                 checkpoint_every=max(t.log_every, steps // 4), keep_checkpoints=1)
  c.objective.kind = "knowledge_hops"
  c.objective.knowledge = config.to_dict()
  c.objective.workdir = workdir
  c.objective.banks = tuple(banks)
  c.objective.use_memory = use_memory
  c.objective.stream = name  # seeds the question stream, as before the trainer ran it
  return c


# --- the hop loop -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _decoder(graphdef, max_new: int, allowed: tuple, eos_id: int):
  return jax.jit(functools.partial(sample, graphdef=graphdef, max_new=max_new,
                                   valid_vocab=np.array(allowed), eos_id=eos_id))


def answer(params, graphdef, reader: Reader, bank, queries: list[str], *, max_hops: int,
           name_len: int, prompt_len: int, batch_size: int = 256) -> list[str]:
  """Final answers: retrieve, decode, and retrieve again while the output is a query."""
  vocab = reader.vocab
  current, final = list(queries), [""] * len(queries)
  active = list(range(len(queries)))
  decode = _decoder(graphdef, name_len + max_hops + 1, tuple(vocab.allowed()), vocab.id(EOS))
  for _ in range(max_hops + 1):  # one pass more than needed: a wrong rewrite may not shrink
    if not active:
      break
    prompts = reader.prompts(bank, [current[i] for i in active])
    outs = []
    for start in range(0, len(prompts), batch_size):
      part = prompts[start:start + batch_size]
      part = part + [part[0]] * (batch_size - len(part))  # one compiled shape
      tokens, mask = left_pad(part, prompt_len, vocab.pad_id)
      ids = np.asarray(decode(params, tokens, mask, jax.random.key(0)))
      outs += [vocab.decode(r) for r in ids[:len(prompts) - start]]
    still = []
    for i, text in zip(active, outs):
      if is_query(text, name_len):
        current[i] = text
        still.append(i)
      else:
        final[i] = text
    active = still
  return final


def exact_match(params, graphdef, reader: Reader, kb, bank, config, hops: int) -> float:
  rng = np.random.default_rng([config.seed, kb.seed, hops, 7])
  qs = facts.questions(kb, rng, config.kb.eval_questions, hops)
  got = answer(params, graphdef, reader, bank, [kb.question(e, rs) for e, rs in qs],
               max_hops=config.kb.max_hops, name_len=kb.name_len,
               prompt_len=config.train.seq_len - kb.name_len - config.kb.max_hops - 1)
  return float(np.mean([g == kb.answer(e, rs) for g, (e, rs) in zip(got, qs)]))


def recall(reader: Reader, kb, bank, config) -> dict[str, float]:
  rng = np.random.default_rng([config.seed, kb.seed, 11])
  qs = facts.questions(kb, rng, config.kb.eval_questions, config.kb.max_hops)
  rels = [rs[:int(rng.integers(1, len(rs) + 1))] for _, rs in qs]
  rows = reader.retrieve(bank, [kb.question(e, r) for (e, _), r in zip(qs, rels)])
  gold = np.array([kb.fact_row(e, r[0]) for (e, _), r in zip(qs, rels)])
  return retr.recall_at_k(rows, gold, ks=(1, reader.top_k))


# --- checkpoints of each stage -------------------------------------------------------------------

def save_params(path: str, params, meta: dict) -> None:
  """The stage's parameters through the library's Checkpointer (step = its training steps),
  then meta.json: a stage is finished when its meta.json exists."""
  ckpt = Checkpointer(path, keep=1, async_save=False)
  ckpt.save(int(meta.get("steps", 0)), {"params": params}, None, to_json(meta))
  ckpt.close()
  if jax.process_index() == 0:
    (epath.Path(path) / "meta.json").write_text(json.dumps(to_json(meta), indent=1))


def load_params(path: str, abstract_params):
  """(params, meta) of a finished stage, or None if it has not finished."""
  meta = read_json(os.path.join(path, "meta.json"))
  if not meta:
    return None
  ckpt = Checkpointer(path, keep=1, async_save=False)
  restored = ckpt.restore_latest({"params": abstract_params}, None)
  ckpt.close()
  if restored is None:
    raise ConfigError(f"{path} has a meta.json but no checkpoint that restores; delete {path} "
                      "to train the stage again")
  return restored[1]["params"], meta


def abstract_of(params):
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), params)


# --- the command ------------------------------------------------------------------------------

def load_reader(config, workdir: str, vocab: Vocab, mesh) -> Reader | None:
  """The workdir's trained retriever as a Reader, or None before it is trained."""
  rcfg = retriever_config(config, -(-vocab.size // 8) * 8)
  graphdef, fresh = retr.init(rcfg, config.seed, mesh, DEFAULT_RULES)
  loaded = load_params(os.path.join(workdir, "retriever"), abstract_of(fresh))
  if loaded is None:
    return None
  return Reader(vocab, graphdef, loaded[0], config.memory.top_k,
                1 + config.kb.name_len + config.kb.max_hops)


def retriever_stage(config, workdir: str, vocab: Vocab, mesh, writer: MetricWriter) -> Reader:
  """1. The trained retriever (trained now unless the workdir has it) as a Reader."""
  if load_reader(config, workdir, vocab, mesh) is None:
    rcfg = retriever_config(config, -(-vocab.size // 8) * 8)
    _, params = train_retriever(config, rcfg, vocab, mesh, writer)
    save_params(os.path.join(workdir, "retriever"), params, {
        "config": dataclasses.asdict(rcfg), "vocab": vocab.to_json(),
        "steps": config.retriever.steps})
  return load_reader(config, workdir, vocab, mesh)


def bank_stage(config, workdir: str, reader: Reader, mesh, writer: MetricWriter):
  """2. (knowledge bases, memory banks) by name, built unless the workdir has them."""
  kbs, banks = {}, {}
  dim = config.retriever.dim
  for name, (seed, n_entities) in bank_specs(config).items():
    kbs[name] = make_kb(config, seed, n_entities)
    path = os.path.join(workdir, "banks", name)
    if not epath.Path(path, "manifest.json").exists():
      build_bank(kbs[name], reader, path)
    banks[name] = memory.load(path, mesh, dim=dim)
  n_train = len([n for n in banks if n.startswith("train_")])
  writer.console(f"banks: {n_train} for training and a fresh one of {banks['fresh'].size} facts, "
                 f"a larger fresh one of {banks['fresh_large'].size}; keys of dim {dim}, in "
                 f"{workdir}/banks")
  return kbs, banks


def model_stage(config, workdir: str, reader: Reader, kbs, banks, mesh, writer: MetricWriter):
  """3. and 4. name -> (graphdef, params): the reasoner with memory, and the full-context model
  with the first bank in its weights; trained unless the workdir has them."""
  train_names = [n for n in banks if n.startswith("train_")]
  specs = {"reasoner": (config.model.attention_window, train_names, True, config.train.steps),
           "full_context": (0, ["train_0"], False, config.train.full_context_steps)}
  models = {}
  for name, (window, bank_names, use_memory, steps) in specs.items():
    path = os.path.join(workdir, name)
    if not read_json(os.path.join(path, "meta.json")):  # trained by rf_jax.train, resumable
      run_config = trainer_config(config, workdir, name, window, bank_names, use_memory, steps)
      final = trainer.run(run_config, path)
      cfg = model_config(run_config, reader.vocab)  # the model the trainer built
      if jax.process_index() == 0:
        report_lib.write_file(os.path.join(path, "meta.json"), json.dumps(to_json({
            "model": dataclasses.asdict(cfg), "vocab": reader.vocab.to_json(), "steps": steps,
            "final": final, "memory": {"retriever": os.path.join(workdir, "retriever"),
                                       "top_k": reader.top_k} if use_memory else None}), indent=1))
    run = load_run(path, mesh=mesh)
    models[name] = (run.graphdef, run.params)
  return models


def evaluate(config, reader: Reader, kbs, banks, models, mesh) -> dict:
  """5. Exact match by hops of each model on the first training bank and the fresh one (with
  and without retrieval), on the large fresh bank, and the retriever's recall."""
  rows = {"reasoner + retrieval": ("reasoner", True),
          "reasoner, no retrieval": ("reasoner", False),
          "full-context, facts in weights": ("full_context", False)}
  hops = range(1, config.kb.max_hops + 1)
  table = {}
  with jax.set_mesh(mesh):
    for label, (name, use_memory) in rows.items():
      graphdef, params = models[name]
      table[label] = {
          f"{bank}/{h}": exact_match(params, graphdef, reader, kbs[bank],
                                     banks[bank] if use_memory else None, config, h)
          for bank in ("train_0", "fresh") for h in hops}
    graphdef, params = models["reasoner"]
    large = {str(h): exact_match(params, graphdef, reader, kbs["fresh_large"],
                                 banks["fresh_large"], config, h) for h in hops}
  return {"table": table, "fresh_large": large,
          "recall": {b: recall(reader, kbs[b], banks[b], config)
                     for b in ("train_0", "fresh", "fresh_large")},
          "chance": 1 / config.kb.n_entities, "bank_facts": banks["fresh"].size,
          "large_bank_facts": banks["fresh_large"].size}


def run(config, workdir: str) -> dict:
  """The whole experiment in `workdir`; finished stages are loaded, not repeated."""
  t_start = time.perf_counter()
  workdir = str(ensure_writable(workdir))
  if config.memory.top_k > config.kb.n_entities * config.kb.n_relations:
    raise ConfigError(f"memory.top_k={config.memory.top_k} exceeds the bank size; lower it")
  vocab = phase1_vocab()
  mesh = make_mesh((-1, 1, 1))
  writer = MetricWriter(workdir)
  reader = retriever_stage(config, workdir, vocab, mesh, writer)
  kbs, banks = bank_stage(config, workdir, reader, mesh, writer)
  models = model_stage(config, workdir, reader, kbs, banks, mesh, writer)
  report = {**evaluate(config, reader, kbs, banks, models, mesh),
            "wall_s": time.perf_counter() - t_start, "config": config.to_dict()}
  text = format_report(report, config.kb.max_hops)
  report_lib.write(workdir, text, report)
  writer.console(text)
  writer.close()
  return report


def format_report(report: dict, max_hops: int) -> str:
  hops = range(1, max_hops + 1)
  head = ("| exact match | " + " | ".join(f"train bank, {h} hop" for h in hops) + " | " +
          " | ".join(f"fresh bank, {h} hop" for h in hops) + " |")
  lines = [head, "|---" * (1 + 2 * max_hops) + "|"]
  for label, row in report["table"].items():
    cells = [row[f"{b}/{h}"] for b in ("train_0", "fresh") for h in hops]
    lines.append(f"| {label} | " + " | ".join(f"{x:.3f}" for x in cells) + " |")
  rec = report["recall"]
  lines += ["", f"chance: {report['chance']:.3f} ({report['bank_facts']} facts per bank)",
            f"reasoner + retrieval on a fresh bank of {report['large_bank_facts']} facts: " +
            ", ".join(f"{h} hop {v:.3f}" for h, v in report["fresh_large"].items()),
            "retriever recall: " + "; ".join(
                f"{b} bank " + ", ".join(f"{k} {v:.3f}" for k, v in r.items())
                for b, r in rec.items()),
            f"wall time {format_duration(report['wall_s'])}"]
  return "\n".join(lines)


def main(argv=None) -> int:
  from absl import app, flags, logging
  from ml_collections import config_flags
  config_flag = config_flags.DEFINE_config_file("config", config_lib.resolve("knowledge.py"),
                                                "Config file (with :preset).")
  workdir_flag = flags.DEFINE_string("workdir", None, "Output folder; default workdirs/knowledge.")
  from_flag = flags.DEFINE_string("bank_from", None, "Instead of the experiment: build a bank "
                                  "from these text files (globs) with the workdir's retriever.")
  out_flag = flags.DEFINE_string("bank_out", None, "Where --bank_from writes the bank.")
  chunk_flag = flags.DEFINE_integer("chunk_len", 32, "Tokens per chunk for --bank_from.")

  def _main(args):
    if len(args) > 1:
      raise app.UsageError(f"unexpected arguments: {args[1:]}")
    logging.set_verbosity(logging.WARNING)
    workdir = workdir_flag.value or f"workdirs/{config_flag.value.name}"
    try:
      if from_flag.value:
        if not out_flag.value:
          raise ConfigError("--bank_from needs --bank_out=PATH for the new bank")
        m = build_text_bank(workdir, from_flag.value, out_flag.value, chunk_flag.value,
                            make_mesh((-1, 1, 1)))
        print(f"bank of {m['count']} chunks x {m['chunk_len']} tokens, keys of dim {m['dim']}, "
              f"in {out_flag.value}")
        return
      run(config_flag.value, workdir)
    except ConfigError as e:
      sys.exit(f"error: {e}")

  app.run(_main, config_lib.resolve_flag(argv if argv is not None else sys.argv, "knowledge.py"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
