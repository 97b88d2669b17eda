"""Decoder-only transformer in Flax NNX. Every parameter carries logical axis names.

Logical axes: vocab, embed, heads, kv, mlp. `sharding.py` maps them onto the mesh;
the model itself never names a mesh axis.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from rf_jax import attention
from rf_jax.attention import NEG_INF, attention_mask, branch_mask


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  vocab_size: int
  d_model: int = 128
  n_layers: int = 4
  n_heads: int = 4
  mlp_dim: int = 512
  position: str = "rope"  # "rope" or "none"
  rope_base: float = 10_000.0
  attention_window: int = 0  # 0: full causal attention; w > 0: each token sees the last w tokens
  attention_block: int = 128  # causal attention in query blocks of this size (0: one T x T product)
  attention: str = "auto"  # kernel (rf_jax.attention): auto, masked, blocked, window, dot_product, splash
  dtype: str = "float32"  # compute dtype: activations and matmuls ("bfloat16": mixed precision)
  param_dtype: str = "float32"  # parameters, and so gradients and optimizer moments
  remat: bool = False  # recompute each block in the backward pass instead of storing it
  remat_policy: str = "full"  # with remat: what a block keeps (REMAT_POLICIES)
  scan_layers: bool = False  # stacked block parameters [n_layers, ...], run by one lax.scan
  norm_eps: float = 1e-6

  @property
  def head_dim(self) -> int:
    return self.d_model // self.n_heads

  def validate(self) -> None:
    if self.d_model % self.n_heads:
      raise ValueError(f"model.d_model={self.d_model} must be divisible by "
                       f"model.n_heads={self.n_heads}")
    if self.position == "rope" and self.head_dim % 2:
      raise ValueError(f"rotary positions need an even head dim, got {self.head_dim}; "
                       "change model.d_model or model.n_heads")
    if self.position not in ("rope", "none"):
      raise ValueError(f"model.position must be 'rope' or 'none', got {self.position!r}")
    if self.attention_window < 0:
      raise ValueError("model.attention_window must be >= 0 (0 means full attention)")
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"model.remat_policy must be one of {', '.join(REMAT_POLICIES)}, "
                       f"got {self.remat_policy!r}")
    attention.validate(self)


# What a rematerialised block keeps for the backward pass (the rest is recomputed):
# "full" keeps nothing but its input; the others are jax.checkpoint_policies. Every matmul
# of the model but attention's scores is 2-D, so dots_with_no_batch_dims_saveable keeps the
# projections and the MLP and recomputes attention.
REMAT_POLICIES = ("full", "dots_with_no_batch_dims_saveable", "dots_saveable")


def remat_policy(name: str):
  return None if name == "full" else getattr(jax.checkpoint_policies, name)


def _capturing(module: nnx.Module) -> bool:
  """True inside `nnx.capture`: sow only then, so training never stores intermediates."""
  return hasattr(module, "__captures__")


def _param(rngs: nnx.Rngs, shape, axes, dtype, std: float) -> nnx.Param:
  init = nnx.with_partitioning(nnx.initializers.normal(std), axes)
  return nnx.Param(init(rngs.params(), shape, dtype))


class RMSNorm(nnx.Module):

  def __init__(self, dim: int, eps: float, param_dtype):
    self.scale = nnx.Param(nnx.with_partitioning(nnx.initializers.ones, ("embed",))(
        jax.random.key(0), (dim,), param_dtype))
    self.eps = eps

  def __call__(self, x):
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (y * self.scale[...].astype(jnp.float32)).astype(x.dtype)


def rope(x_BTHK, positions_BT, base: float):
  half = x_BTHK.shape[-1] // 2
  freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angle = positions_BT[..., None].astype(jnp.float32) * freq  # B T half
  sin, cos = jnp.sin(angle)[:, :, None, :], jnp.cos(angle)[:, :, None, :]
  x1, x2 = jnp.split(x_BTHK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BTHK.dtype)


class Attention(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    d, h, k, pd = cfg.d_model, cfg.n_heads, cfg.head_dim, jnp.dtype(cfg.param_dtype)
    std = d ** -0.5
    self.wq = _param(rngs, (d, h, k), ("embed", "heads", "kv"), pd, std)
    self.wk = _param(rngs, (d, h, k), ("embed", "heads", "kv"), pd, std)
    self.wv = _param(rngs, (d, h, k), ("embed", "heads", "kv"), pd, std)
    self.wo = _param(rngs, (h, k, d), ("heads", "kv", "embed"), pd, (h * k) ** -0.5 / (2 * cfg.n_layers) ** 0.5)
    self.cfg = cfg

  def __call__(self, x_BTD, positions_BT, segment_ids_BT, cache=None, branch_BT=None):
    """Self-attention; with `cache`, also attends to cached keys and returns the new cache;
    with `branch_BT`, rows whose segments share a prompt among branches (`branch_mask`)."""
    cfg, dt = self.cfg, jnp.dtype(self.cfg.dtype)
    B, T, D = x_BTD.shape
    H, K = cfg.n_heads, cfg.head_dim
    x_ND = x_BTD.reshape(B * T, D)
    # 2-D matmuls: XLA:CPU runs them ~1.5x faster than the 3-D einsums they replace.
    proj = lambda w: (x_ND @ w[...].astype(dt).reshape(D, H * K)).reshape(B, T, H, K)
    q, k, v = proj(self.wq), proj(self.wk), proj(self.wv)
    if cfg.position == "rope":
      q, k = rope(q, positions_BT, cfg.rope_base), rope(k, positions_BT, cfg.rope_base)
    new_cache = None
    if cache is None and not _capturing(self) and branch_BT is None:
      out = attention.attend(cfg, q, k, v, positions_BT, segment_ids_BT)  # model.attention
    else:  # decoding with a KV cache, or under nnx.capture
      keys, values, k_pos, k_seg = k, v, positions_BT, segment_ids_BT
      if cache is not None:
        keys = jnp.concatenate([cache["k"].astype(dt), k], axis=1)
        values = jnp.concatenate([cache["v"].astype(dt), v], axis=1)
        k_pos = jnp.concatenate([cache["pos"], positions_BT], axis=1)
        k_seg = jnp.concatenate([cache["seg"], segment_ids_BT], axis=1)
        new_cache = write_cache(cache, k, v, positions_BT, segment_ids_BT)
      mask = attention_mask(positions_BT, k_pos, segment_ids_BT, k_seg, cfg.attention_window)
      if branch_BT is not None:
        if cache is not None:
          raise ValueError("prompt-sharing branches are for training rows, not a KV cache")
        mask = branch_mask(mask, branch_BT, branch_BT)
      out = (self._sown(q, keys, values, mask) if _capturing(self)
             else attention.attend_cached(cfg, q, keys, values, mask))
    out = (out.reshape(B * T, H * K) @ self.wo[...].astype(dt).reshape(H * K, D)).reshape(B, T, D)
    return out, new_cache

  def _sown(self, q_BTHK, k_BSHK, v_BSHK, mask_BTS):
    """One masked product with its probabilities sown: only under nnx.capture
    (rf_jax.api.inspect), never in training."""
    q, keys, values = (a.transpose(0, 2, 1, 3) for a in (q_BTHK, k_BSHK, v_BSHK))  # B H T K
    logits = jnp.einsum("bhtk,bhsk->bhts", q, keys).astype(jnp.float32) * q.shape[-1] ** -0.5
    probs = jax.nn.softmax(jnp.where(mask_BTS[:, None], logits, NEG_INF), axis=-1)
    probs = probs.astype(jnp.dtype(self.cfg.dtype))
    self.sow(nnx.Intermediate, "attention", probs)  # the probabilities themselves
    return jnp.einsum("bhts,bhsk->bthk", probs, values)


def init_cache(cfg: ModelConfig, batch: int, length: int, dtype=jnp.float32) -> dict:
  """An empty KV cache of `length` slots per layer (a ring buffer: slot = index % length).

  With a sliding window, `length = attention_window` is enough: older keys are masked
  out anyway. Empty slots have segment -1, which no query matches. With scanned layers the
  layers' caches are one dict of arrays with a leading layer axis, else a list of dicts.
  """
  lead = (cfg.n_layers,) if cfg.scan_layers else ()
  shape = (*lead, batch, length, cfg.n_heads, cfg.head_dim)
  layer = lambda: {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype),
                   "pos": jnp.zeros((*lead, batch, length), jnp.int32),
                   "seg": jnp.full((*lead, batch, length), -1, jnp.int32)}
  layers = layer() if cfg.scan_layers else [layer() for _ in range(cfg.n_layers)]
  return {"index": jnp.zeros((), jnp.int32), "layers": layers}


def repeat_cache(cfg: ModelConfig, cache: dict, n: int) -> dict:
  """Each row of `cache` repeated `n` times in place (row b becomes rows b*n .. b*n + n-1):
  one prefill serves a group of samples of the same prompt."""
  axis = 1 if cfg.scan_layers else 0
  rep = lambda a: jnp.repeat(a, n, axis=axis)
  return {"index": cache["index"], "layers": jax.tree.map(rep, cache["layers"])}


def write_cache(cache: dict, k, v, pos, seg) -> dict:
  """Writes T new tokens at ring slots (index + t) % S; keeps the last S if T >= S."""
  S, T = cache["pos"].shape[1], k.shape[1]
  if T >= S:
    shift = (cache["index"] + T - S) % S
    roll = lambda a: jnp.roll(a[:, T - S:], shift, axis=1)
    return {"k": roll(k).astype(cache["k"].dtype), "v": roll(v).astype(cache["v"].dtype),
            "pos": roll(pos), "seg": roll(seg)}
  slots = (cache["index"] + jnp.arange(T)) % S
  put = lambda old, new: old.at[:, slots].set(new.astype(old.dtype))
  return {"k": put(cache["k"], k), "v": put(cache["v"], v),
          "pos": put(cache["pos"], pos), "seg": put(cache["seg"], seg)}


class MLP(nnx.Module):
  """SwiGLU."""

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    d, m, pd = cfg.d_model, cfg.mlp_dim, jnp.dtype(cfg.param_dtype)
    self.w_gate = _param(rngs, (d, m), ("embed", "mlp"), pd, d ** -0.5)
    self.w_up = _param(rngs, (d, m), ("embed", "mlp"), pd, d ** -0.5)
    self.w_down = _param(rngs, (m, d), ("mlp", "embed"), pd, m ** -0.5 / (2 * cfg.n_layers) ** 0.5)
    self.dtype = jnp.dtype(cfg.dtype)

  def __call__(self, x_BTD):
    dt = self.dtype
    B, T, D = x_BTD.shape
    x_ND = x_BTD.reshape(B * T, D)
    gate = x_ND @ self.w_gate[...].astype(dt)
    up = x_ND @ self.w_up[...].astype(dt)
    return ((jax.nn.silu(gate) * up) @ self.w_down[...].astype(dt)).reshape(B, T, D)


class Block(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    pd = jnp.dtype(cfg.param_dtype)
    self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps, pd)
    self.attn = Attention(cfg, rngs)
    self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps, pd)
    self.mlp = MLP(cfg, rngs)

  def __call__(self, x, positions, segment_ids, cache=None, branch=None):
    h, cache = self.attn(self.attn_norm(x), positions, segment_ids, cache, branch)
    x = x + h
    return x + self.mlp(self.mlp_norm(x)), cache


def _apply_block(block: Block, x, positions, segment_ids, branch=None):
  return block(x, positions, segment_ids, None, branch)[0]


def stack_blocks(blocks: list[Block]) -> Block:
  """One Block whose parameters hold all of `blocks`' along a leading "layers" axis.

  Made from the unrolled blocks, so a seed gives the same parameters in either layout.
  """
  graphdef, _ = nnx.split(blocks[0])
  stacked = jax.tree.map(lambda *a: jnp.stack(a), *(nnx.split(b)[1] for b in blocks))
  for _, var in nnx.to_flat_state(stacked):
    axes = var.get_metadata().get("out_sharding")
    if axes is not None:
      var.set_metadata(out_sharding=("layers", *axes))
  return nnx.merge(graphdef, stacked)


def scan_blocks(blocks: Block, x, positions, segment_ids, remat: bool, policy: str,
                branch=None):
  """The residual stream through stacked blocks with one lax.scan: the compiled step holds
  one block, whatever the depth."""
  graphdef, state = nnx.split(blocks)
  body = lambda x, layer: (_apply_block(nnx.merge(graphdef, layer), x, positions, segment_ids,
                                        branch), None)
  if remat:
    body = jax.checkpoint(body, policy=remat_policy(policy), prevent_cse=False)
  return jax.lax.scan(body, x, state)[0]


def scan_blocks_cached(blocks: Block, x, positions, segment_ids, layers: dict, index):
  """`scan_blocks` for decoding: each layer's cache slice goes in and comes back written."""
  graphdef, state = nnx.split(blocks)

  def body(x, layer_and_cache):
    layer, cache = layer_and_cache
    return nnx.merge(graphdef, layer)(x, positions, segment_ids, dict(cache, index=index))

  return jax.lax.scan(body, x, (state, layers))


class Transformer(nnx.Module):

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    cfg.validate()
    pd = jnp.dtype(cfg.param_dtype)
    self.embed = _param(rngs, (cfg.vocab_size, cfg.d_model), ("vocab", "embed"), pd, 1.0)
    blocks = [Block(cfg, rngs) for _ in range(cfg.n_layers)]
    self.blocks = stack_blocks(blocks) if cfg.scan_layers else nnx.List(blocks)
    self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps, pd)
    self.unembed = _param(rngs, (cfg.d_model, cfg.vocab_size), ("embed", "vocab"), pd,
                          cfg.d_model ** -0.5)
    self.cfg = cfg

  def __call__(self, tokens_BT, positions_BT, segment_ids_BT, cache=None, branch_BT=None):
    """Float32 logits [B, T, vocab_size]; with a KV `cache`, returns (logits, new cache).
    `branch_BT`: rows where several completions share one copy of their prompt
    (rf_jax.rl_rows); their attention runs as an explicit mask (`branch_mask`)."""
    dt = jnp.dtype(self.cfg.dtype)
    x = jnp.take(self.embed[...], tokens_BT, axis=0).astype(dt)
    if cache is None:
      x = self._layers(x, positions_BT, segment_ids_BT, branch_BT)
    else:
      x, layers = self._layers_cached(x, positions_BT, segment_ids_BT, cache)
      cache = {"index": cache["index"] + tokens_BT.shape[1], "layers": layers}
    B, T, D = x.shape
    x = self.final_norm(x).reshape(B * T, D)
    # f32 logits accumulated in f32: the loss is f32 whatever the compute dtype
    logits = jnp.matmul(x, self.unembed[...].astype(dt), preferred_element_type=jnp.float32)
    logits = logits.reshape(B, T, -1)
    return logits if cache is None else (logits, cache)

  def _layers(self, x, positions_BT, segment_ids_BT, branch_BT=None):
    cfg = self.cfg
    if cfg.scan_layers:
      if _capturing(self):
        raise ValueError("nnx.capture needs unrolled layers: rf_jax.load(...).inspect converts "
                         "them; or build the model with scan_layers=False")
      return scan_blocks(self.blocks, x, positions_BT, segment_ids_BT, cfg.remat,
                         cfg.remat_policy, branch_BT)
    block_fn = _apply_block
    if cfg.remat:
      block_fn = nnx.remat(_apply_block, policy=remat_policy(cfg.remat_policy))
    for block in self.blocks:
      if _capturing(self):
        self.sow(nnx.Intermediate, "hidden", x)  # the residual stream entering each block
      x = block_fn(block, x, positions_BT, segment_ids_BT, branch_BT)
    if _capturing(self):
      self.sow(nnx.Intermediate, "hidden", x)
    return x

  def _layers_cached(self, x, positions_BT, segment_ids_BT, cache):
    """(x, the layers' new caches); each layer writes its chunk at cache["index"]."""
    if self.cfg.scan_layers:
      return scan_blocks_cached(self.blocks, x, positions_BT, segment_ids_BT, cache["layers"],
                                cache["index"])
    layers = []
    for block, layer_cache in zip(self.blocks, cache["layers"]):
      x, layer_cache = block(x, positions_BT, segment_ids_BT,
                             dict(layer_cache, index=cache["index"]))
      layers.append(layer_cache)
    return x, layers


def param_count(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Training FLOPs per token (forward + backward = 3x forward), matmuls and attention.

  Attention scores cost 2 * 2 * d_model * (keys seen) per layer forward; with a window,
  a token sees at most `attention_window` keys; causal averages half the sequence.
  """
  d, L, m, V = cfg.d_model, cfg.n_layers, cfg.mlp_dim, cfg.vocab_size
  matmul_params = L * (4 * d * d + 3 * d * m) + d * V
  keys = (seq_len + 1) / 2
  if cfg.attention_window:
    keys = min(keys, cfg.attention_window)
  attn = L * 2 * 2 * d * keys
  return 3 * (2 * matmul_params + attn)
