"""Phase handoff: start a phase from the previous phase's parameters (`config.init_from`).

Parameters only; the optimizer starts fresh. The vocabulary may grow at the end and
nothing else may change: every other parameter must keep its name and shape (in either
layer layout: stacked and unrolled blocks convert, see rf_jax.layout). New token
rows (embedding rows, output columns) start from a fresh initialisation, except text
tokens that spell old symbols: they start from those symbols' rows (the mean of them
for a multi-character piece), so a byte token '7' means what symbol '7' meant.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from rf_jax.checkpoint import absolute, path_name, stored_shapes
from rf_jax.data import text as text_lib
from rf_jax.errors import ConfigError
from rf_jax.layout import is_stacked, shapes_as
from rf_jax.runs import load_run, read_meta
from rf_jax.vocab import SYMBOLS, Vocab, text_vocab, train_sentencepiece

ROW_PARAMS = {"embed": 0, "unembed": 1}  # parameter name -> its vocabulary axis


def split_checkpoint_path(path: str) -> tuple[str, int | None]:
  """A workdir, or a step folder inside its checkpoints/ (local or gs://)."""
  path = str(path).rstrip("/")
  m = re.match(r"^(.*)/checkpoints/(\d+)$", path)
  return (m.group(1), int(m.group(2))) if m else (path, None)


def check_compatible(stored: dict[str, tuple], abs_params, old_vocab: Vocab, vocab: Vocab,
                     what: str) -> None:
  """Raises a one-line ConfigError naming the first parameter or token that does not carry over."""
  if not old_vocab.is_prefix_of(vocab):
    raise ConfigError(f"{what}: this phase's vocabulary does not extend the checkpoint's "
                      f"({old_vocab.first_difference(vocab)}); later phases may only append "
                      "tokens: keep data.extra_symbols and data.tokenizer as in the earlier phase")
  wanted = {"params/" + path_name(p): tuple(a.shape)
            for p, a in jax.tree_util.tree_leaves_with_path(abs_params)}
  stored = {k: v for k, v in stored.items() if k.startswith("params/")}
  for name in sorted(set(wanted) | set(stored)):
    if name not in stored or name not in wanted:
      side = "this model" if name in wanted else "the checkpoint"
      raise ConfigError(f"{what}: parameter {name} exists only in {side}; the architecture "
                        "(config.model) must match the earlier phase except the vocabulary")
    old, new = stored[name], wanted[name]
    axis = ROW_PARAMS.get(name.split("/")[-1])
    same = old == new if axis is None else (
        len(old) == len(new) and all(o == n for i, (o, n) in enumerate(zip(old, new)) if i != axis)
        and old[axis] >= old_vocab.size and new[axis] >= vocab.size)
    if not same:
      raise ConfigError(f"{what}: parameter {name} has shape {old} in the checkpoint but {new} "
                        "in this model; the architecture (config.model) must match the "
                        "earlier phase except the vocabulary")


def seed_table(old_vocab: Vocab, vocab: Vocab) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(new ids, [n, k] old ids, [n, k] weights): each new token spelled by old symbols."""
  old_ids = {old_vocab.tokens[i]: i for i in range(old_vocab.size) if old_vocab.spelling(i)}
  rows = []
  for i in range(old_vocab.size, vocab.size):
    text = vocab.spelling(i)
    if text and all(c in old_ids for c in text):
      rows.append((i, [old_ids[c] for c in text]))
  k = max((len(s) for _, s in rows), default=1)
  new = np.array([i for i, _ in rows], np.int32)
  src = np.zeros((len(rows), k), np.int32)
  w = np.zeros((len(rows), k), np.float32)
  for r, (_, s) in enumerate(rows):
    src[r, :len(s)] = s
    w[r, :len(s)] = 1.0 / len(s)
  return new, src, w


def grow_rows(old, fresh, n_old: int, table, axis: int):
  """`fresh` with the first n_old rows (along `axis`) from `old` and seeded rows filled in."""
  new_ids, src, w = table
  old_t = jnp.moveaxis(old, axis, 0)
  out = jnp.moveaxis(fresh, axis, 0).at[:n_old].set(old_t[:n_old].astype(fresh.dtype))
  if len(new_ids):
    seeded = jnp.einsum("nk,nk...->n...", w, old_t[src].astype(jnp.float32))
    out = out.at[new_ids].set(seeded.astype(fresh.dtype))
  return jnp.moveaxis(out, 0, axis)


def init_params(path: str, abs_params, fresh_params, vocab: Vocab, mesh):
  """(params, lineage) for a phase that starts from checkpoint `path`."""
  what = f"config.init_from={path}"
  workdir, step = split_checkpoint_path(path)
  workdir = absolute(workdir)  # Orbax reads absolute paths only
  if not (epath.Path(workdir) / "checkpoints").exists():
    raise ConfigError(f"{what}: no checkpoints there; point it at the workdir of the earlier "
                      "phase (or <workdir>/checkpoints/<step>), or set it to '' to start fresh")
  try:
    step, meta = read_meta(workdir, step)
  except ConfigError as e:
    raise ConfigError(f"{what}: {e}") from None
  old_vocab = Vocab.from_json(meta["vocab"])
  state_dir = f"{workdir.rstrip('/')}/checkpoints/{step}/state"
  stacked = is_stacked(abs_params)  # either layout hands off into either (rf_jax.layout)
  check_compatible(shapes_as(stored_shapes(state_dir), stacked), abs_params, old_vocab, vocab,
                   what)
  old = load_run(workdir, step, mesh, scan_layers=stacked).params
  table = seed_table(old_vocab, vocab)
  shardings = jax.tree.map(lambda a: a.sharding, abs_params)

  def merge(old, fresh):
    out = {k: v for k, v in old.items() if k not in ROW_PARAMS}
    for name, axis in ROW_PARAMS.items():
      out[name] = grow_rows(old[name], fresh[name], old_vocab.size, table, axis)
    return out

  with jax.set_mesh(mesh):
    params = jax.jit(merge, out_shardings=shardings)(old, fresh_params)
  lineage = list(meta.get("lineage", [])) + [{
      "init_from": str(path), "workdir": workdir, "step": int(step),
      "phase": meta.get("phase"), "name": meta.get("config", {}).get("name")}]
  return params, lineage


def build_vocab(config, workdir: str) -> Vocab:
  """This phase's vocabulary: phase-1 layout plus the text tokens of data.tokenizer.

  A sentencepiece model is trained once per lineage: reused from this workdir's newest
  checkpoint when resuming, else from the `init_from` checkpoint, else trained on the
  phase's text corpus.
  """
  d = config.data
  symbols = SYMBOLS + tuple(c for c in d.extra_symbols if c not in SYMBOLS)
  sp_model = b""
  if d.tokenizer == "sentencepiece":
    sp_model = _lineage_sentencepiece((workdir, config.init_from))
    if not sp_model:
      docs = text_lib.load_documents(d.text_files, d.text_field)
      sp_model = train_sentencepiece(docs, d.sp_vocab_size)
  try:
    return text_vocab(d.tokenizer, symbols, sp_model)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def _lineage_sentencepiece(places) -> bytes:
  """The sentencepiece model of the first of `places` whose checkpoint has one, else b''."""
  for where in places:
    try:
      old = Vocab.from_json(read_meta(split_checkpoint_path(where)[0])[1]["vocab"])
    except ConfigError:
      continue
    if old.text == "sentencepiece":
      return old.sp_model
  return b""

