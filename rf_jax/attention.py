"""Attention kernels by name: `model.attention` picks one, `attend` runs it.

Every kernel computes the same function: causal attention within packed segments,
optionally over a sliding window (see `attention_mask`). They differ in how, so in time and
memory:
  masked       one masked T x T product with a hand-written gradient (the reference)
  blocked      queries in blocks of `attention_block`, each against the keys up to its end
  window       sliding window in blocks of `attention_window`: O(T * window), not O(T^2)
  dot_product  jax.nn.dot_product_attention: cuDNN's fused flash attention on a GPU (16-bit
               inputs), XLA's kernel elsewhere
  splash       the Pallas splash-attention kernel on a TPU (T a multiple of 128); anywhere
               else, or for other T, it runs dot_product, so a TPU run's checkpoint
               evaluates on any machine
  auto         the fused kernel on an accelerator: splash on a TPU, dot_product on a GPU.
               On CPU: window if T > attention_window > 0, blocked if
               T >= 2 * attention_block, else masked

Padding is the one exception: its tokens (segment 0) all sit at position 0, so kernels
that work in blocks may give them other outputs than the reference. Nothing reads those:
only padding attends to padding, and the loss masks it out. Sampling with a KV cache runs
the kernel's `cached` form (`attend_cached`: T new queries against S cached keys under an
explicit mask), the masked product for kernels without one; `nnx.capture`
(rf_jax.api.inspect) always runs the masked product, in the model.

A kernel is `fn(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg) -> out_BTHK`, where cfg is the
model's config (`attention_window`, `attention_block`, ...). Add one with
`@rf_jax.attention.register("name")` in any module imported before the model is built,
then set `model.attention = "name"`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from rf_jax.errors import ConfigError
from rf_jax.plugins import Registry
from rf_jax.sharding import BATCH_AXES

NEG_INF = -1e30  # finite, so a fully masked row gives a uniform softmax instead of NaN


@dataclasses.dataclass(frozen=True)
class Kernel:
  fn: Callable  # (q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg) -> out_BTHK
  check: Callable | None = None  # cfg -> None; raises ConfigError for a config it cannot run
  cached: Callable | None = None  # (q_BTHK, k_BSHK, v_BSHK, mask_BTS) -> out_BTHK (KV cache)


KERNELS: Registry[Kernel] = Registry(
    "attention kernel", "set model.attention to one of them, or add one with "
    "@rf_jax.attention.register(name)")


def register(name: str, check: Callable | None = None, cached: Callable | None = None):
  """Decorates a kernel fn; `check(cfg)` rejects model configs the kernel cannot run;
  `cached(q, k, v, mask)` is its form for decoding with a KV cache (default: masked)."""
  def add(fn):
    KERNELS.register(name)(Kernel(fn, check, cached))
    return fn
  return add


def validate(cfg) -> None:
  """One-line ConfigError for an unknown kernel or one that cannot run this model config."""
  kernel = KERNELS.get(cfg.attention)
  if kernel.check is not None:
    kernel.check(cfg)


def attend(cfg, q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT):
  """Self-attention of T queries over the same T keys with the kernel `cfg.attention`."""
  return KERNELS.get(cfg.attention).fn(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg)


def attend_cached(cfg, q_BTHK, k_BSHK, v_BSHK, mask_BTS):
  """T queries over S keys (a KV cache and the new tokens) under an explicit mask, with the
  cached form of the kernel that runs for S keys; the masked product if it has none."""
  cached = KERNELS.get(resolve(cfg, k_BSHK.shape[1])).cached
  if cached is None:
    out = masked_attention(_heads_first(q_BTHK), _heads_first(k_BSHK), _heads_first(v_BSHK),
                           mask_BTS)
    return _heads_first(out)
  return cached(q_BTHK, k_BSHK, v_BSHK, mask_BTS)


def resolve(cfg, T: int, backend: str | None = None) -> str:
  """The kernel that runs for T tokens on `backend` (default: JAX's): `cfg.attention`, with
  "auto" replaced by its pick and "splash" by dot_product wherever splash cannot run."""
  backend = backend or jax.default_backend()
  name = _auto_choice(cfg, T, backend) if cfg.attention == "auto" else cfg.attention
  if name == "splash" and not splash_runs(T, backend):
    return "dot_product"
  return name


def _auto_choice(cfg, T: int, backend: str) -> str:
  """The vendor's fused kernel on an accelerator. On CPU: the window only where it cuts
  work; blocks once T spans two of them; else one product."""
  if backend in ("tpu", "gpu"):
    return "splash" if backend == "tpu" else "dot_product"
  if cfg.attention_window and T > cfg.attention_window:
    return "window"
  return "blocked" if uses_block_attention(cfg, T) else "masked"


def uses_block_attention(cfg, T: int) -> bool:
  """Whether "auto" runs full causal attention over T tokens in query blocks."""
  return not cfg.attention_window and cfg.attention_block > 0 and T >= 2 * cfg.attention_block


def attention_mask(q_pos_BT, k_pos_BS, q_seg_BT, k_seg_BS, window: int):
  """Causal, same-segment, optionally windowed; positions are within-segment positions."""
  q_pos, k_pos = q_pos_BT[:, :, None], k_pos_BS[:, None, :]
  mask = (q_seg_BT[:, :, None] == k_seg_BS[:, None, :]) & (k_pos <= q_pos)
  if window:
    mask &= q_pos - k_pos < window
  return mask  # B T S


def branch_mask(mask_BTS, q_branch_BT, k_branch_BS):
  """`mask` restricted to prompt-sharing rows: a key of branch 0 (a prompt's tokens, stored
  once) is seen by every branch of its segment, a key of branch b > 0 (one completion) only
  by its own branch."""
  k, q = k_branch_BS[:, None, :], q_branch_BT[:, :, None]
  return mask_BTS & ((k == 0) | (k == q))


# --- the reference: one masked product with a hand-written gradient ---------------------

@jax.custom_vjp
def masked_attention(q_BHTK, k_BHSK, v_BHSK, mask_BTS):
  """softmax(q k^T / sqrt(K), masked) v -> [B, H, T, K]; every query row must see a key.

  The gradient is written by hand (FlashAttention's algebra, without the tiling): the output
  is normalised instead of the T x S probabilities, and the softmax backward uses
  rowsum(dO * O) instead of a pass over T x S. Fewer passes over the T x S tensors, which
  bound attention's time on CPU: forward + backward take ~35% less time than autodiff's.
  """
  return _masked_attention_fwd(q_BHTK, k_BHSK, v_BHSK, mask_BTS)[0]


def _masked_attention_fwd(q, k, v, mask):
  scale = q.shape[-1] ** -0.5
  s = jnp.einsum("bhtk,bhsk->bhts", q * jnp.asarray(scale, q.dtype), k,
                 preferred_element_type=jnp.float32)
  s = jnp.where(mask[:, None], s, NEG_INF)
  p = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))  # unnormalised
  inv = 1.0 / jnp.sum(p, axis=-1, keepdims=True)
  out = (jnp.einsum("bhts,bhsk->bhtk", p.astype(v.dtype), v,
                    preferred_element_type=jnp.float32) * inv).astype(q.dtype)
  return out, (q, k, v, p, inv, out)


def _masked_attention_bwd(res, d_out):
  q, k, v, p, inv, out = res
  scale = q.shape[-1] ** -0.5
  f32 = jnp.float32
  dv = jnp.einsum("bhts,bhtk->bhsk", p.astype(v.dtype), (d_out * inv).astype(v.dtype),
                  preferred_element_type=f32)
  dp = jnp.einsum("bhtk,bhsk->bhts", d_out, v, preferred_element_type=f32)
  row = jnp.sum(d_out.astype(f32) * out.astype(f32), axis=-1, keepdims=True)
  ds = (p * inv * (dp - row)).astype(q.dtype)
  dq = jnp.einsum("bhts,bhsk->bhtk", ds, k, preferred_element_type=f32) * scale
  dk = jnp.einsum("bhts,bhtk->bhsk", ds, q, preferred_element_type=f32) * scale
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None


masked_attention.defvjp(_masked_attention_fwd, _masked_attention_bwd)


def _heads_first(a_BTHK):
  return a_BTHK.transpose(0, 2, 1, 3)


@register("masked")
def masked(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg):
  mask = attention_mask(pos_BT, pos_BT, seg_BT, seg_BT, cfg.attention_window)
  out = masked_attention(_heads_first(q_BTHK), _heads_first(k_BTHK), _heads_first(v_BTHK), mask)
  return out.transpose(0, 2, 1, 3)


# --- blocked causal attention -----------------------------------------------------------

def causal_block_attention(q_BHTK, k_BHTK, v_BHTK, pos_BT, seg_BT, block: int):
  """Causal attention computed per block of `block` queries against the keys up to the block's
  end: about half the score work of the masked T x T product, same result.

  Valid because a query never sees a later index: within a segment positions rise with the
  index. Returns [B, T, H, K].
  """
  T = q_BHTK.shape[2]
  outs = []
  for start in range(0, T, block):
    stop = min(start + block, T)
    mask = attention_mask(pos_BT[:, start:stop], pos_BT[:, :stop], seg_BT[:, start:stop],
                          seg_BT[:, :stop], 0)
    outs.append(masked_attention(q_BHTK[:, :, start:stop], k_BHTK[:, :, :stop],
                                 v_BHTK[:, :, :stop], mask))
  return jnp.concatenate(outs, axis=2).transpose(0, 2, 1, 3)


def _check_blocked(cfg) -> None:
  if cfg.attention_window:
    raise ConfigError("model.attention='blocked' is full causal attention; set "
                      "model.attention_window=0, or use 'window' or 'auto' for a window")
  if cfg.attention_block <= 0:
    raise ConfigError("model.attention='blocked' needs model.attention_block > 0")


@register("blocked", check=_check_blocked)
def blocked(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg):
  return causal_block_attention(_heads_first(q_BTHK), _heads_first(k_BTHK),
                                _heads_first(v_BTHK), pos_BT, seg_BT, cfg.attention_block)


# --- sliding-window attention -----------------------------------------------------------

def window_attention(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, window: int):
  """Sliding-window attention in blocks of `window` tokens: O(T * window), not O(T^2).

  A query in block i can only see keys in blocks i-1 and i (positions rise by one per
  token within a segment, so a key `window` or more tokens back is out of the window), so
  each block attends to 2 * window keys under the same mask as `attention_mask`.
  Returns [B, T, H, K].
  """
  B, T, H, K = q_BTHK.shape
  W, n = window, -(-T // window)
  pad = n * W - T
  padded = lambda a, fill: jnp.pad(a, [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2),
                                   constant_values=fill)
  blocks = lambda a, fill: padded(a, fill).reshape(B, n, W, *a.shape[2:])
  q, k, v = blocks(q_BTHK, 0), blocks(k_BTHK, 0), blocks(v_BTHK, 0)
  pos, seg = blocks(pos_BT, 0), blocks(seg_BT, -1)  # padding is a segment no query has
  with_previous = lambda a, fill: jnp.concatenate(
      [jnp.pad(a[:, :-1], [(0, 0), (1, 0)] + [(0, 0)] * (a.ndim - 2), constant_values=fill),
       a], axis=2)  # B n 2W ...
  k2, v2 = with_previous(k, 0), with_previous(v, 0)
  k_pos, k_seg = with_previous(pos, 0), with_previous(seg, -1)
  mask = attention_mask(pos.reshape(B * n, W), k_pos.reshape(B * n, 2 * W),
                        seg.reshape(B * n, W), k_seg.reshape(B * n, 2 * W), window)
  heads_first = lambda a: a.reshape(B * n, -1, H, K).transpose(0, 2, 1, 3)
  out = masked_attention(heads_first(q), heads_first(k2), heads_first(v2), mask)
  return out.transpose(0, 2, 1, 3).reshape(B, n * W, H, K)[:, :T]


def _check_window(cfg) -> None:
  if cfg.attention_window <= 0:
    raise ConfigError("model.attention='window' needs model.attention_window > 0")


@register("window", check=_check_window)
def window(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg):
  return window_attention(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg.attention_window)


# --- JAX's own -------------------------------------------------------------------------

def _implementation(q_BTHK) -> str | None:
  """cuDNN's fused kernel where it runs; JAX's default (XLA's kernel in jax 0.10) elsewhere.

  cuDNN needs a GPU, 16-bit inputs, a head dim that is a multiple of 8 (at most 128 before
  Hopper) and, with a mask, an even T: outside that it raises instead of falling back.
  """
  _, T, _, K = q_BTHK.shape
  if (jax.default_backend() == "gpu" and q_BTHK.dtype in (jnp.bfloat16, jnp.float16)
      and K % 8 == 0 and K <= 128 and T % 2 == 0):
    return "cudnn"
  return None


def same_segment_mask(seg_BT):
  """[B, T, T]: query and key in the same packed segment (causality and window go apart)."""
  return seg_BT[:, :, None] == seg_BT[:, None, :]


def _dot_product_cached(q_BTHK, k_BSHK, v_BSHK, mask_BTS):
  """Decoding: new queries against cached keys (ring slots, so no causal order by index)."""
  return jax.nn.dot_product_attention(q_BTHK, k_BSHK, v_BSHK, mask=mask_BTS[:, None],
                                      implementation=_implementation(q_BTHK))


@register("dot_product", cached=_dot_product_cached)
def dot_product(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg, implementation="auto"):
  """jax.nn.dot_product_attention, causal by index, with the window as its local window and
  packed segments as a mask.

  Equal to `attention_mask` for real tokens: segments are contiguous and positions rise by
  one per token within one, so causal by index within a segment is causal by position, and
  the window over indices is the window over positions. cuDNN skips the tiles causality
  and the window rule out, and reads the segment mask as a bias.
  """
  window = cfg.attention_window
  if implementation == "auto":
    implementation = _implementation(q_BTHK)
  return jax.nn.dot_product_attention(
      q_BTHK, k_BTHK, v_BTHK, mask=same_segment_mask(seg_BT)[:, None], is_causal=True,
      local_window_size=(window - 1, 0) if window else None, implementation=implementation)


# --- splash attention (TPU) ---------------------------------------------------------------

SPLASH_LANES = 128  # splash tiles the sequence in blocks of a multiple of 128


def splash_runs(T: int, backend: str) -> bool:
  """Splash is a Mosaic TPU kernel with blocks of multiples of 128 tokens."""
  return backend == "tpu" and T % SPLASH_LANES == 0


def _splash_kernel(T: int, H: int, window: int, interpret: bool):
  """The splash kernel for one row: [H, T, K] per input, causal (or a causal window)."""
  from jax.experimental.pallas.ops.tpu import splash_attention as sa  # TPU-only kernel
  head = sa.LocalMask((T, T), (window - 1, 0), 0) if window else sa.CausalMask((T, T))
  block = next(b for b in (512, 256, SPLASH_LANES) if T % b == 0)
  sizes = sa.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                        block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                        block_q_dq=block, block_kv_dq=block)
  kernel = sa.make_splash_mha(sa.MultiHeadMask([head] * H), block_sizes=sizes, head_shards=1,
                              q_seq_shards=1, interpret=interpret)
  return lambda q, k, v, seg: kernel(q, k, v, segment_ids=sa.SegmentIds(q=seg, kv=seg))


def splash_attention(q_BTHK, k_BTHK, v_BTHK, seg_BT, window: int, interpret: bool = False):
  """Causal attention within packed segments (optionally windowed) with splash attention.

  Same function as `dot_product` (causal by index, segments as segment ids). T must be a
  multiple of 128. `interpret=True` runs the kernel in Pallas' interpreter (any backend;
  slow: for tests). Under a mesh, rows and heads are split over the batch and tensor axes
  with shard_map, since a Pallas kernel cannot be partitioned by XLA.
  """
  B, T, H, K = q_BTHK.shape
  per_row = _splash_kernel(T, H, window, interpret)
  q = q_BTHK * jnp.asarray(K ** -0.5, q_BTHK.dtype)  # splash does not scale the scores
  run = lambda q, k, v, seg: _heads_first(jax.vmap(per_row)(
      _heads_first(q), _heads_first(k), _heads_first(v), seg))
  return _over_mesh(run, H)(q, k_BTHK, v_BTHK, seg_BT)


def _over_mesh(fn, heads: int):
  """`fn` of [B, T, H, K] arrays and [B, T] segments, under shard_map if a mesh is set."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or not set(BATCH_AXES) <= set(mesh.axis_names):
    return fn
  tensor = "tensor" if "tensor" in mesh.axis_names and heads % mesh.shape["tensor"] == 0 else None
  qkv, seg = P(BATCH_AXES, None, tensor, None), P(BATCH_AXES, None)
  return jax.shard_map(fn, in_specs=(qkv, qkv, qkv, seg), out_specs=qkv, check_vma=False)


@register("splash", cached=_dot_product_cached)
def splash(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg):
  if resolve(cfg, q_BTHK.shape[1]) != "splash":  # not a TPU, or T not a multiple of 128
    return dot_product(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg)
  return splash_attention(q_BTHK, k_BTHK, v_BTHK, seg_BT, cfg.attention_window)


@register("auto")
def auto(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg):
  name = resolve(cfg, q_BTHK.shape[1])
  return KERNELS.get(name).fn(q_BTHK, k_BTHK, v_BTHK, pos_BT, seg_BT, cfg)
