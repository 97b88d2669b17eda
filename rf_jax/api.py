"""Reload a checkpoint and probe it: `rf_jax.load(path)` and what the returned model can do.

    model = rf_jax.load("workdirs/phase1")          # a workdir, or .../checkpoints/<step>
    model.generate(["add:12+35"])                     # -> ['47']
    model.score_task("add", level=2, n=64)            # exact match and partial credit
    out = model.inspect("dyck:(([")                   # hidden states, attention, logit lens

Parameters only (no optimizer state), restored onto whatever devices this process has.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rf_jax import tasks as tasks_lib
from rf_jax.data.packing import encode_prompt
from rf_jax.errors import ConfigError
from rf_jax.greedy import (GreedyEvaluator, answer_text, raw_text, scratchpad_of,
                           scratchpad_tokens, task_items)
from rf_jax.handoff import split_checkpoint_path
from rf_jax.runs import Run, load_run, relayout
from rf_jax.sampling import left_pad, sample
from rf_jax.sharding import make_mesh


@dataclasses.dataclass
class LoadedModel:
  run: Run

  @property
  def vocab(self):
    return self.run.vocab

  @property
  def config(self):
    return self.run.config

  @property
  def step(self) -> int:
    return self.run.step

  @functools.cached_property
  def model(self):
    """The NNX transformer with the checkpoint's parameters bound."""
    return nnx.merge(self.run.graphdef, self.run.params)

  @property
  def use_trace(self) -> bool:
    return bool(self.config.data.get("use_trace", False))

  @property
  def scratchpad(self) -> int:
    return scratchpad_of(self.config)

  def generate(self, prompts: list[str], max_new: int = 64, temperature: float = 0.0,
               top_k: int = 0, seed: int = 0, raw: bool = False) -> list[str]:
    """Completions of task prompts (`<bos> prompt <sep>` is added); up to <eos>.

    `raw=True` returns everything generated (trace or scratchpad included) instead of the
    answer only. A model trained with a scratchpad writes one first (`max_new` more tokens).
    """
    v = self.vocab
    ids = [encode_prompt(v, p) for p in prompts]
    length = -(-max(len(i) for i in ids) // 8) * 8
    tokens, mask = left_pad(ids, length, v.pad_id)
    fn = jax.jit(functools.partial(sample, graphdef=self.run.graphdef,
                                   max_new=max_new + scratchpad_tokens(self.scratchpad),
                                   valid_vocab=v.allowed(self.use_trace or self.scratchpad > 0),
                                   eos_id=v.eos_id,
                                   temperature=temperature, top_k=top_k,
                                   think=self.scratchpad, ans_id=v.ans_id))
    with jax.set_mesh(self.run.mesh):
      out = np.asarray(fn(self.run.params, jnp.asarray(tokens), jnp.asarray(mask),
                          jax.random.key(seed)))
    return [raw_text(v, row) if raw else answer_text(v, row, self.use_trace, self.scratchpad)
            for row in out]

  def score_task(self, task: str, level: int = 1, n: int = 64, seed: int | None = None) -> dict:
    """Greedy exact match and partial credit on `n` held-out examples of a task family."""
    t = tasks_lib.get(task)
    tasks_lib.check_level(t, level)
    seed = int(self.config.seed) if seed is None else seed
    items = task_items([task], [level], n, seed)
    ev = GreedyEvaluator(items, self.run.graphdef, self.run.mesh, self.vocab, self.use_trace,
                         scratchpad=self.scratchpad)
    outputs = ev.generate(self.run.params)
    rows = [{"prompt": it.example.prompt, "answer": it.example.answer, "output": o,
             "score": float(t.score(it.example, o))} for it, o in zip(items, outputs)]
    return {"task": task, "level": level, "n": n,
            "exact": float(np.mean([r["output"] == r["answer"] for r in rows])),
            "score": float(np.mean([r["score"] for r in rows])), "examples": rows}

  def inspect(self, text, with_sep: bool = True) -> dict:
    """Per-layer activations and attention weights for a prompt (or a list of prompts).

    Returns tokens [T] (strings), hidden [L+1, T, D] (the residual stream entering each
    block, then the final one), attention [L, H, T, T], logits [T, V] (V = vocabulary size), and logit_lens
    [L+1, T, V]: each hidden state read out through the final norm and unembedding.
    With a list, every array gains a leading batch axis, rows are right-padded to the
    longest prompt, and `tokens` is a list of per-prompt token lists.
    """
    v = self.vocab
    texts = [text] if isinstance(text, str) else list(text)
    ids = [encode_prompt(v, t) if with_sep else [v.bos_id] + v.encode(t) for t in texts]
    T = max(len(i) for i in ids)
    tokens = np.full((len(ids), T), v.pad_id, np.int32)
    seg = np.zeros((len(ids), T), np.int32)  # padding is segment 0: real tokens never see it
    for r, row in enumerate(ids):
      tokens[r, :len(row)], seg[r, :len(row)] = row, 1
    pos = np.broadcast_to(np.arange(T), tokens.shape)
    with jax.set_mesh(self.run.mesh):
      logits, hidden, attn, lens = self._forward(self._unrolled.params, jnp.asarray(tokens),
                                                 jnp.asarray(pos), jnp.asarray(seg))
    # Rows past the vocabulary only pad the embedding table: drop them from the readouts.
    out = {"tokens": [[v.tokens[i] for i in row] for row in ids],
           "hidden": np.asarray(hidden), "attention": np.asarray(attn),
           "logits": np.asarray(logits)[..., :v.size], "logit_lens": np.asarray(lens)[..., :v.size]}
    if isinstance(text, str):
      out = {k: val[0] for k, val in out.items()}
    return out

  @functools.cached_property
  def _unrolled(self) -> Run:
    """The run with one module per layer: what nnx.capture reads layer by layer."""
    return relayout(self.run, False)

  @functools.cached_property
  def _forward(self):
    graphdef = self._unrolled.graphdef

    @jax.jit
    def forward(params, tokens, pos, seg):
      model = nnx.merge(graphdef, params)  # inside the trace: capture mutates the module
      logits, inter = nnx.capture(model, nnx.Intermediate)(tokens, pos, seg)
      hidden = jnp.stack(inter["hidden"].get_value(), axis=1)  # B L+1 T D
      attn = jnp.stack([inter["blocks"][i]["attn"]["attention"].get_value()[0]
                        for i in range(len(model.blocks))], axis=1)  # B L H T T
      lens = model.final_norm(hidden) @ model.unembed[...].astype(hidden.dtype)
      return logits, hidden, attn, lens

    return forward


def load(path: str, step: int | None = None, devices=None,
         scan_layers: bool | None = None) -> LoadedModel:
  """Loads a run's model for probing; `devices` defaults to all of this process's devices;
  `scan_layers` stacks (True) or unrolls (False) its layers, None keeps the checkpoint's."""
  workdir, path_step = split_checkpoint_path(path)
  if path_step is not None and step is not None and path_step != step:
    raise ConfigError(f"{path} names step {path_step} but step={step} was passed")
  mesh = make_mesh((-1, 1, 1), devices or jax.local_devices())
  return LoadedModel(load_run(workdir, step if step is not None else path_step, mesh,
                              scan_layers))
