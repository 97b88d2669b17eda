"""A small dual encoder for the memory bank, trained contrastively with in-batch negatives.

Questions and facts go through the same trunk (transformer blocks from `model.py`); a
leading marker token (<bos> for a query, <sep> for a fact) lets it encode the two sides
differently. The vector is the last token's final hidden state (causal attention, so it has
seen the whole text), projected to `dim` and L2-normalised: inner product = cosine.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rf_jax.model import Block, ModelConfig, RMSNorm, _param


@dataclasses.dataclass(frozen=True)
class RetrieverConfig:
  vocab_size: int
  d_model: int = 64
  n_layers: int = 2
  n_heads: int = 4
  mlp_dim: int = 256
  dim: int = 128           # key / query vector size
  temperature: float = 0.05

  def trunk(self) -> ModelConfig:
    return ModelConfig(vocab_size=self.vocab_size, d_model=self.d_model, n_layers=self.n_layers,
                       n_heads=self.n_heads, mlp_dim=self.mlp_dim)


class Retriever(nnx.Module):

  def __init__(self, cfg: RetrieverConfig, rngs: nnx.Rngs):
    trunk = cfg.trunk()
    trunk.validate()
    self.embed = _param(rngs, (cfg.vocab_size, cfg.d_model), ("vocab", "embed"), jnp.float32, 1.0)
    self.blocks = nnx.List([Block(trunk, rngs) for _ in range(cfg.n_layers)])
    self.norm = RMSNorm(cfg.d_model, trunk.norm_eps, jnp.float32)
    self.proj = _param(rngs, (cfg.d_model, cfg.dim), ("embed", None), jnp.float32,
                       cfg.d_model ** -0.5)
    self.cfg = cfg

  def __call__(self, tokens_BT, lengths_B):
    """Unit vectors [B, dim] of right-padded texts with `lengths_B` real tokens each."""
    B, T = tokens_BT.shape
    positions = jnp.broadcast_to(jnp.arange(T), (B, T))
    segments = (positions < lengths_B[:, None]).astype(jnp.int32)
    x = jnp.take(self.embed[...], tokens_BT, axis=0)
    for block in self.blocks:
      x = block(x, positions, segments)[0]
    last = jnp.take_along_axis(x, (lengths_B - 1)[:, None, None], axis=1)[:, 0]
    v = self.norm(last) @ self.proj[...]
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True).clip(1e-6)


def pad_texts(ids: list[list[int]], pad_id: int, length: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Right-padded [N, length] tokens and their lengths."""
  length = length or max(len(x) for x in ids)
  out = np.full((len(ids), length), pad_id, np.int32)
  for i, x in enumerate(ids):
    if len(x) > length:
      raise ValueError(f"a text of {len(x)} tokens does not fit in {length}")
    out[i, :len(x)] = x
  return out, np.array([len(x) for x in ids], np.int32)


def contrastive_loss(params, graphdef, q_BT, q_len_B, f_BT, f_len_B, temperature: float):
  """Symmetric InfoNCE: question i's positive is fact i, every other fact a negative."""
  model = nnx.merge(graphdef, params)
  q, f = model(q_BT, q_len_B), model(f_BT, f_len_B)
  logits = q @ f.T / temperature
  labels = jnp.arange(q.shape[0])
  loss = (optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean() +
          optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()) / 2
  return loss, {"in_batch_accuracy": (jnp.argmax(logits, axis=1) == labels).mean()}


def contrastive_step(state, batch, *, graphdef, tx, temperature: float):
  (loss, aux), grads = jax.value_and_grad(contrastive_loss, has_aux=True)(
      state["params"], graphdef, *batch, temperature)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  return ({"params": params, "opt_state": opt_state, "step": state["step"] + 1},
          {"loss": loss, **aux})


def init(cfg: RetrieverConfig, seed: int, mesh, rules):
  """(graphdef, params as a pure dict), laid out on `mesh` by the logical-axis `rules`."""
  with jax.set_mesh(mesh), nnx.logical_axis_rules(rules):
    model = Retriever(cfg, nnx.Rngs(params=jax.random.key(seed)))
  graphdef, params = nnx.split(model, nnx.Param)
  return graphdef, nnx.to_pure_dict(params)


@functools.partial(jax.jit, static_argnames="graphdef")
def _encode(params, tokens_BT, lengths_B, graphdef):
  return nnx.merge(graphdef, params)(tokens_BT, lengths_B)


def encode(params, graphdef, ids: list[list[int]], pad_id: int, batch_size: int = 1024,
           length: int = 0) -> np.ndarray:
  """Vectors [N, dim] of token lists, in fixed-size batches (one compilation)."""
  tokens, lengths = pad_texts(ids, pad_id, length)
  n = len(ids)
  bs = min(batch_size, 1 << (n - 1).bit_length())  # power-of-two shapes: few compilations
  out = []
  for start in range(0, n, bs):
    t, l = tokens[start:start + bs], lengths[start:start + bs]
    if len(t) < bs:  # pad the last batch to the compiled shape
      t = np.concatenate([t, np.repeat(t[:1], bs - len(t), 0)])
      l = np.concatenate([l, np.repeat(l[:1], bs - len(l), 0)])
    out.append(np.asarray(_encode(params, t, l, graphdef)))
  return np.concatenate(out)[:n]


def recall_at_k(retrieved_BK: np.ndarray, gold_B: np.ndarray, ks=(1, 4)) -> dict[str, float]:
  """Share of queries whose gold row is among the first k retrieved, for each k."""
  hit = retrieved_BK == np.asarray(gold_B)[:, None]
  return {f"recall@{k}": float(hit[:, :k].any(axis=1).mean()) for k in ks}
