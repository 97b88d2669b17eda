"""Benchmarks (never timed unit tests): python -m rf_jax.bench [--config=configs/phase1.py:bench]

Prints one table for the config's model on this machine:
  train     the trainer's jitted step (the code path of rf_jax.train): tokens/s, MFU
  floor     a minimal hand-written JAX step of the same model and optimizer (no NNX, no
            framework): the floor of framework overhead
  data      the grain pipeline's rows/s against the rows/s the train step consumes
  ckpt      how long an async Orbax save blocks the loop, as a share of one step
  sampler   greedy decoding with the KV cache against full recomputation
  rl        the reward step (config.rl) as configured against one padded row per sample at
            one length for every family: time split (sampling, scoring, updating), update
            tokens, whole-loop and update MFU, the two interleaved in one run
  layers    compile time of the train step at 4 and 24 layers, unrolled and scanned
            (model.scan_layers)
  window    sliding-window attention (blockwise) against masked full attention, T=512..4096
  attention every attention kernel (model.attention), full and windowed, T=512..2048
  memory    exact top-k search: 1M x 128 keys, a batch of 64 queries
"""
from __future__ import annotations

import argparse
import copy
import functools
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rf_jax import config as config_lib
from rf_jax import memory
from rf_jax.attention import attend, attention_mask, KERNELS, NEG_INF, resolve, window_attention
from rf_jax.checkpoint import Checkpointer
from rf_jax.curriculum import Curriculum
from rf_jax.data.pipeline import make_iterator
from rf_jax.data.tasks import PackedTaskSource, TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.layout import is_stacked
from rf_jax.metrics import peak_flops_per_device
from rf_jax.model import flops_per_token, ModelConfig, param_count
from rf_jax import tasks as tasks_lib
from rf_jax.data.packing import encode_prompt, encode_target
from rf_jax.objectives.policy_gradient import RLTrainer, pack_len
from rf_jax.sampling import decode_recompute, sample
from rf_jax.sharding import batch_sharding, make_global_batch, make_mesh
from rf_jax.step import train_step
from rf_jax.train_state import (abstract_model, abstract_state, init_state, make_optimizer,
                                make_schedule, mesh_rules, model_config, state_shardings)
from rf_jax.vocab import phase1_vocab


def best_time(fn, *args, repeats: int = 3) -> float:
  jax.block_until_ready(fn(*args))  # compile and warm up
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best


class Setup:
  """The pieces rf_jax.train builds, on one device."""

  def __init__(self, config):
    self.config, t = config, config.train
    self.vocab = phase1_vocab()
    self.mcfg = model_config(config, self.vocab)
    self.mesh = make_mesh((1, 1, 1), jax.devices()[:1])
    self.rules = mesh_rules(config)
    self.schedule = make_schedule(t.learning_rate, t.warmup_steps, max(t.steps, 100))
    self.tx = make_optimizer(self.schedule, t.weight_decay, t.b1, t.b2, t.grad_clip)
    self.graphdef, self.abs_params = abstract_model(self.mcfg, self.mesh, self.rules)
    self.shardings = state_shardings(self.abs_params, self.tx, self.mesh)
    names = config_lib.names(config.data.tasks)
    lo, hi = config.data.levels
    self.source = PackedTaskSource(TaskMixture.build(names, None, (lo, hi)),
                                   Curriculum(tuple(names), lo, hi), self.vocab,
                                   config.data.seq_len, config.seed, False, t.batch_size)
    self.tokens_per_step = t.batch_size * config.data.seq_len

  def state(self):
    return init_state(self.mcfg, self.tx, self.mesh, self.rules, 0)

  def batch(self):
    it = make_iterator(self.source, self.config.train.batch_size, 0, 1)
    return make_global_batch(next(it), self.mesh)


# --- the minimal hand-written step: same math as rf_jax.model, plain functions ------------

def _rms(x, scale, eps):
  x32 = x.astype(jnp.float32)
  return (x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + eps) * scale).astype(x.dtype)


def _rope(x, pos, base):
  half = x.shape[-1] // 2
  ang = pos[..., None].astype(jnp.float32) * base ** (-jnp.arange(half, dtype=jnp.float32) / half)
  sin, cos = jnp.sin(ang)[:, :, None], jnp.cos(ang)[:, :, None]
  x1, x2 = jnp.split(x, 2, -1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def handwritten_loss(p, batch, cfg):
  tok, pos, seg = batch["inputs"], batch["positions"], batch["segment_ids"]
  B, T = tok.shape
  D, H = cfg.d_model, cfg.n_heads
  K = D // H
  x = p["embed"][tok]
  for i in range(cfg.n_layers):  # stacked blocks (model.scan_layers) are sliced per layer
    b = jax.tree.map(lambda a: a[i], p["blocks"]) if is_stacked(p) else p["blocks"][i]
    h = _rms(x, b["attn_norm"]["scale"], cfg.norm_eps).reshape(B * T, D)
    q, k, v = ((h @ b["attn"][w].reshape(D, H * K)).reshape(B, T, H, K) for w in ("wq", "wk", "wv"))
    q, k = _rope(q, pos, cfg.rope_base), _rope(k, pos, cfg.rope_base)
    # the model's attention kernel (model.attention): the floor measures framework overhead only
    o = attend(cfg, q, k, v, pos, seg).reshape(B * T, H * K)
    x = x + (o @ b["attn"]["wo"].reshape(H * K, D)).reshape(B, T, D)
    h = _rms(x, b["mlp_norm"]["scale"], cfg.norm_eps).reshape(B * T, D)
    m = jax.nn.silu(h @ b["mlp"]["w_gate"]) * (h @ b["mlp"]["w_up"])
    x = x + (m @ b["mlp"]["w_down"]).reshape(B, T, D)
  logits = (_rms(x, p["final_norm"]["scale"], cfg.norm_eps).reshape(B * T, D) @ p["unembed"])
  logp = jax.nn.log_softmax(logits.reshape(B, T, -1))
  nll = -jnp.take_along_axis(logp, batch["targets"][..., None], -1)[..., 0]
  return (nll * batch["loss_mask"]).sum() / jnp.maximum(batch["loss_mask"].sum(), 1.0)


def handwritten_step(state, batch, *, cfg, tx):
  loss, grads = jax.value_and_grad(handwritten_loss)(state["params"], batch, cfg)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
          "step": state["step"] + 1}, loss


# --- the benchmarks ---------------------------------------------------------------------

def bench_train(s: Setup, peak: float) -> dict:
  fpt = flops_per_token(s.mcfg, s.config.data.seq_len)
  bsh = batch_sharding(s.mesh)
  batch = s.batch()
  out = {}
  trainer = jax.jit(functools.partial(train_step, graphdef=s.graphdef, tx=s.tx, schedule=s.schedule),
                    in_shardings=(s.shardings, bsh), out_shardings=(s.shardings, None),
                    donate_argnums=0)
  floor = jax.jit(functools.partial(handwritten_step, cfg=s.mcfg, tx=s.tx),
                  in_shardings=(s.shardings, bsh), out_shardings=(s.shardings, None),
                  donate_argnums=0)
  with jax.set_mesh(s.mesh):
    for name, fn in (("train", trainer), ("floor", floor)):
      state = s.state()
      t0 = time.perf_counter()
      compiled = fn.lower(state, batch).compile()
      compile_s = time.perf_counter() - t0
      state, _ = compiled(state, batch)
      jax.block_until_ready(state)
      times = []
      for _ in range(5):
        t = time.perf_counter()
        state, m = compiled(state, batch)
        jax.block_until_ready((state, m))
        times.append(time.perf_counter() - t)
      step_s = float(np.median(times))
      mem = compiled.memory_analysis()
      out[name] = {"step_s": step_s, "tokens_per_s": s.tokens_per_step / step_s,
                   "mfu": s.tokens_per_step * fpt / step_s / peak, "compile_s": compile_s,
                   "temp_mb": getattr(mem, "temp_size_in_bytes", 0) / 2**20}
  return out


def compile_seconds(s: Setup) -> tuple[float, float]:
  """(wall, CPU) seconds of lowering and compiling the trainer's step (abstract state:
  nothing is allocated). CPU time is the steadier of the two on a shared machine."""
  bsh = batch_sharding(s.mesh)
  trainer = jax.jit(functools.partial(train_step, graphdef=s.graphdef, tx=s.tx, schedule=s.schedule),
                    in_shardings=(s.shardings, bsh), out_shardings=(s.shardings, None),
                    donate_argnums=0)
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=bsh) for k, v in s.batch().items()}
  with jax.set_mesh(s.mesh):
    t, cpu = time.perf_counter(), time.process_time()
    trainer.lower(abstract_state(s.abs_params, s.tx, s.mesh), batch).compile()
    return time.perf_counter() - t, time.process_time() - cpu


def bench_layers(config, depths=(4, 24)) -> list[dict]:
  """Compile time of the train step by depth, unrolled and scanned, measured alternately
  after one compile that warms the process up."""
  def setup(layers, scan):
    c = copy.deepcopy(config)
    c.model.update(n_layers=layers, scan_layers=scan)
    return Setup(c)

  compile_seconds(setup(min(depths), True))
  rows = []
  for layers in depths:
    for scan in (False, True):
      wall, cpu = compile_seconds(setup(layers, scan))
      rows.append({"layers": layers, "scan": scan, "compile_s": wall, "compile_cpu_s": cpu})
  return rows


def bench_data(s: Setup, step_s: float) -> dict:
  it = make_iterator(s.source, s.config.train.batch_size, 0, 1)
  next(it)
  n, t = 0, time.perf_counter()
  while time.perf_counter() - t < 3.0:
    next(it)
    n += 1
  rows_per_s = n * s.config.train.batch_size / (time.perf_counter() - t)
  need = s.config.train.batch_size / step_s
  return {"rows_per_s": rows_per_s, "needed_rows_per_s": need, "ratio": rows_per_s / need}


def bench_checkpoint(s: Setup, step_s: float) -> dict:
  state = s.state()
  with tempfile.TemporaryDirectory() as d:
    ckpt = Checkpointer(d, keep=2)
    ckpt.save(1, state, None, {"bench": True})  # first save sets up the async machinery
    ckpt.wait()
    blocks = []
    for step in (2, 3, 4):
      t = time.perf_counter()
      ckpt.save(step, state, None, {"bench": True})
      blocks.append(time.perf_counter() - t)
      ckpt.wait()
    ckpt.close()
  block = float(np.median(blocks))
  return {"blocking_s": block, "share_of_step": block / step_s}


def bench_sampler(s: Setup, new: int, batch: int, prompt_len: int) -> dict:
  params = s.state()["params"]
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(6, s.vocab.size, size=(batch, prompt_len)), jnp.int32)
  mask = jnp.ones_like(tokens)
  # eos_id=-1: never stop early, so both paths produce exactly `new` tokens.
  cached = jax.jit(functools.partial(sample, graphdef=s.graphdef, max_new=new,
                                     valid_vocab=s.vocab.allowed(), eos_id=-1))
  full = jax.jit(functools.partial(decode_recompute, graphdef=s.graphdef, max_new=new,
                                   valid_vocab=s.vocab.allowed()))
  with jax.set_mesh(s.mesh):
    t_cached = best_time(cached, params, tokens, mask, jax.random.key(0))
    t_full = best_time(full, params, tokens, mask, repeats=1)
    same = np.mean(np.asarray(cached(params, tokens, mask, jax.random.key(0)))
                   == np.asarray(full(params, tokens, mask)))
  return {"cached_s": t_cached, "recompute_s": t_full, "speedup": t_full / t_cached,
          "tokens_per_s": batch * new / t_cached, "same_tokens": float(same),
          "batch": batch, "new": new, "prompt": prompt_len}


def rl_arms(config, vocab) -> dict:
  """The reward step as it was (one padded row per sample, one prompt and answer length for
  every family: the longest of the top level), with each family's own lengths and samples
  packed into update rows, and as configured (with rl.share_prompts, a group's prompt
  prefilled and written once)."""
  names = config_lib.names(config.data.tasks)
  before = config.rl.copy_and_resolve_references()
  hi = int(config.data.levels[1])
  longest = lambda f: max(f(tasks_lib.make_example(tasks_lib.get(n), 0, i, hi))
                          for n in names for i in range(64))
  before.update(pack=False, prompt_len=-(-longest(lambda e: len(encode_prompt(vocab, e.prompt)))
                                         // 16) * 16,
                max_new=longest(lambda e: len(encode_target(vocab, e, False))) + (
                    config.rl.scratchpad + 1 if config.rl.scratchpad else 0))
  arms = {"padded": before}
  if config.rl.pack and config.rl.share_prompts:
    arms["packed"] = config.rl.copy_and_resolve_references()
    arms["packed"].share_prompts = False
    arms["shared prompts"] = config.rl
  else:
    arms[config.rl.pack and "packed" or "padded, own lengths"] = config.rl
  return arms


def bench_rl(s: Setup, peak: float, steps: int = 6) -> dict:
  """The arms of `rl_arms`, steps interleaved so all see the same machine. Each arm first
  runs the same steps unmeasured from the same fresh state: they draw the same prompts, so
  every shape the measured steps need is compiled by then."""
  names = config_lib.names(s.config.data.tasks)
  lo, hi = s.config.data.levels
  trainers, states, parts = {}, {}, {}
  for arm, rl in rl_arms(s.config, s.vocab).items():
    mix = TaskMixture.build(names, None, (lo, hi))
    trainers[arm] = RLTrainer(rl, mix, Curriculum(names, lo, hi), s.vocab, s.graphdef, s.mcfg,
                              s.mesh, s.tx, s.shardings, 0, False, 4,
                              row_len=pack_len(rl, mix, (lo, hi), s.vocab, 0, False))
    state, _ = trainers[arm](s.state(), 0)  # compiles, then the unmeasured pass
    for step in range(1, steps + 1):
      state, _ = trainers[arm](state, step)
    states[arm], _ = trainers[arm](s.state(), 0)
    parts[arm] = []
  for step in range(1, steps + 1):
    for arm, trainer in trainers.items():
      states[arm], m = trainer(states[arm], step)
      parts[arm].append(m)
  out = {}
  for arm, ms in parts.items():
    med = {k: float(np.median([m[k] for m in ms])) for k in
           ("rollout_s", "score_s", "update_s", "flops", "update_flops", "tokens",
            "update_tokens")}
    med["step_s"] = med["rollout_s"] + med["score_s"] + med["update_s"]
    med.update(mfu=med["flops"] / med["step_s"] / peak,
               mfu_update=med["update_flops"] / med["update_s"] / peak,
               rows=s.config.rl.prompts * s.config.rl.group_size)
    out[arm] = med
  return out


def bench_window(window: int = 128, lengths=(512, 1024, 2048, 4096), batch: int = 8,
                 heads: int = 4, head_dim: int = 32) -> list[dict]:
  """Attention forward + backward at growing T: sliding window (blockwise) vs masked full."""

  def full(q, k, v, pos, seg):
    logits = jnp.einsum("bthk,bshk->bhts", q, k) * head_dim ** -0.5
    mask = attention_mask(pos, pos, seg, seg, window)
    probs = jax.nn.softmax(jnp.where(mask[:, None], logits, NEG_INF), axis=-1)
    return jnp.einsum("bhts,bshk->bthk", probs, v)

  blockwise = lambda q, k, v, pos, seg: window_attention(q, k, v, pos, seg, window)
  grad = lambda f: jax.jit(jax.grad(lambda q, k, v, pos, seg: (f(q, k, v, pos, seg) ** 2).sum(),
                                    argnums=(0, 1, 2)))
  out = []
  for T in lengths:
    rng = np.random.default_rng(T)
    q, k, v = (jnp.asarray(rng.standard_normal((batch, T, heads, head_dim)), jnp.float32)
               for _ in range(3))
    pos = jnp.broadcast_to(jnp.arange(T), (batch, T))
    seg = jnp.ones((batch, T), jnp.int32)
    out.append({"T": T, "window_s": best_time(grad(blockwise), q, k, v, pos, seg, repeats=5),
                "full_s": best_time(grad(full), q, k, v, pos, seg, repeats=2)})
  return out


def bench_attention(lengths=(512, 1024, 2048), window: int = 128, batch: int = 8, heads: int = 4,
                    head_dim: int = 32, dtype: str = "") -> list[dict]:
  """Forward + backward of every registered attention kernel, full causal and windowed.

  One row per (T, window) with seconds per kernel; a kernel that cannot run a setting
  (blocked with a window, window without one; splash off a TPU) is left out of that row.
  16-bit on a GPU or TPU (where dot_product runs cuDNN's kernel, splash Pallas'), float32
  elsewhere.
  """
  dtype = dtype or ("bfloat16" if jax.default_backend() in ("gpu", "tpu") else "float32")
  rows = []
  for w in (0, window):
    for T in lengths:
      rng = np.random.default_rng(T)
      q, k, v = (jnp.asarray(rng.standard_normal((batch, T, heads, head_dim)), dtype)
                 for _ in range(3))
      pos = jnp.broadcast_to(jnp.arange(T), (batch, T))
      seg = jnp.ones((batch, T), jnp.int32)
      row = {"T": T, "window": w, "dtype": dtype, "kernels": {}}
      for name in KERNELS.names():
        cfg = ModelConfig(vocab_size=1, d_model=heads * head_dim, n_heads=heads, attention=name,
                          attention_window=w)
        try:
          cfg.validate()
        except ConfigError:
          continue
        if name == "splash" and resolve(cfg, T) != "splash":
          continue  # off a TPU it runs dot_product, timed already
        out = lambda q, k, v, cfg=cfg: attend(cfg, q, k, v, pos, seg).astype(jnp.float32)
        grad = jax.jit(jax.grad(lambda *a: (out(*a) ** 2).sum(), argnums=(0, 1, 2)))
        row["kernels"][name] = best_time(grad, q, k, v)
        if name == "auto":
          row["auto_picks"] = resolve(cfg, T)
      rows.append(row)
  return rows


def bench_topk(n: int = 1_000_000, dim: int = 128, batch: int = 64, k: int = 10) -> dict:
  """Exact top-k over a bank of n keys (rows sharded over this machine's devices)."""
  rng = np.random.default_rng(0)
  keys = memory.shard_rows(rng.standard_normal((n, dim), np.float32), make_mesh((-1, 1, 1)))
  queries = jnp.asarray(rng.standard_normal((batch, dim), np.float32))
  t = best_time(lambda q: memory.top_k(keys, q, k, n), queries, repeats=5)
  return {"n": n, "dim": dim, "batch": batch, "k": k, "search_s": t,
          "devices": len(keys.sharding.device_set), "queries_per_s": batch / t}


def print_kernels(only: list[str]) -> None:
  """The benchmarks that need no model config: attention kernels and the memory bank."""
  if "window" in only:
    rows = bench_window()
    for x in rows:
      print(f"window   T={x['T']:5d}: sliding window (128) {x['window_s'] * 1000:8.1f} ms "
            f"({x['window_s'] / x['T'] * 1e6:5.1f} us/position), masked full "
            f"{x['full_s'] * 1000:9.1f} ms  (attention forward + backward, batch 8, 4 heads)")
    first, last = rows[0], rows[-1]
    grow = last["T"] / first["T"]
    print(f"window   T x{grow:.0f}: sliding window time x{last['window_s'] / first['window_s']:.1f}"
          f" (linear: x{grow:.0f}), masked full x{last['full_s'] / first['full_s']:.1f}"
          f" (quadratic: x{grow ** 2:.0f})")
  if "attention" in only:
    for x in bench_attention():
      times = "  ".join(f"{n} {t * 1000:8.1f} ms" for n, t in x["kernels"].items())
      print(f"attention T={x['T']:5d} window={x['window']:3d} {x['dtype']}: {times}  "
            f"(auto = {x['auto_picks']}; forward + backward, batch 8, 4 heads of 32)")
  if "memory" in only:
    x = bench_topk()
    print(f"memory   exact top-{x['k']} over {x['n']:,} x {x['dim']} keys on {x['devices']} "
          f"device(s): batch of {x['batch']} queries in {x['search_s'] * 1000:.1f} ms "
          f"({x['queries_per_s']:,.0f} queries/s)")


def print_step(s: Setup, peak: float) -> float:
  """The trainer's step against the hand-written floor; returns the trainer's step time."""
  r = bench_train(s, peak)
  for name in ("train", "floor"):
    x = r[name]
    print(f"{name:<8} {x['step_s'] * 1000:8.1f} ms/step {x['tokens_per_s']:10,.0f} tok/s  "
          f"MFU {100 * x['mfu']:5.1f}%  compile {x['compile_s']:.1f}s  temp {x['temp_mb']:.0f} MiB")
  print(f"{'':<8} trainer step / hand-written step = {r['train']['step_s'] / r['floor']['step_s']:.3f}")
  return r["train"]["step_s"]


def print_around_step(s: Setup, only: list[str], step_s: float, args, peak: float) -> None:
  """What surrounds the step: data, checkpoints, sampling, RL."""
  if "data" in only:
    x = bench_data(s, step_s)
    print(f"data     {x['rows_per_s']:10,.0f} rows/s; the step consumes {x['needed_rows_per_s']:,.0f} "
          f"rows/s -> {x['ratio']:.1f}x")
  if "ckpt" in only:
    x = bench_checkpoint(s, step_s)
    print(f"ckpt     async save blocks {x['blocking_s'] * 1000:.1f} ms = "
          f"{100 * x['share_of_step']:.2f}% of a step")
  if "sampler" in only:
    x = bench_sampler(s, args.new, args.batch, args.prompt)
    print(f"sampler  {x['batch']} x {x['new']} new tokens after {x['prompt']}: KV cache "
          f"{x['cached_s']:.2f}s ({x['tokens_per_s']:,.0f} tok/s), recompute {x['recompute_s']:.2f}s"
          f" -> {x['speedup']:.1f}x; same tokens {100 * x['same_tokens']:.1f}%")
  if "rl" in only:
    arms = bench_rl(s, peak)
    for arm, x in arms.items():
      share = lambda k: 100 * x[k] / x["step_s"]
      print(f"rl {arm:<18} {x['step_s'] * 1000:6.0f} ms/step ({x['rows']} samples): sampling "
            f"{share('rollout_s'):.0f}%, scoring {share('score_s'):.0f}%, updating "
            f"{share('update_s'):.0f}%; update rows {x['update_tokens']:,.0f} tokens; MFU whole "
            f"loop {100 * x['mfu']:.1f}%, update {100 * x['mfu_update']:.1f}%")
    (a, x), *rest = arms.items()
    for b, y in rest:
      print(f"rl {b} step / {a} step = {y['step_s'] / x['step_s']:.3f}")


def print_layers(config) -> None:
  rows = bench_layers(config)
  for scan in (False, True):
    (lo, hi) = sorted((r for r in rows if r["scan"] == scan), key=lambda r: r["layers"])
    print(f"layers   {'scanned' if scan else 'unrolled':<8} train step compile at {lo['layers']} "
          f"layers {lo['compile_s']:.1f}s ({lo['compile_cpu_s']:.1f}s CPU), at {hi['layers']} "
          f"{hi['compile_s']:.1f}s ({hi['compile_cpu_s']:.1f}s CPU) -> "
          f"x{hi['compile_cpu_s'] / lo['compile_cpu_s']:.2f} in CPU time")


def parse_set(items: list[str]) -> dict:
  """KEY=VALUE overrides: Python literals (True, 3, (1, 2)), else the string itself."""
  out = {}
  for item in items:
    key, _, value = item.partition("=")
    out[key] = config_lib.literal(value)
  return out


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog="python -m rf_jax.bench", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="phase1.py", help="a config file or a shipped one, "
                 "with :preset")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="config override, e.g. --set model.attention=dot_product (repeatable)")
  p.add_argument("--only", default="train,data,ckpt,sampler")
  p.add_argument("--new", type=int, default=256)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--prompt", type=int, default=32)
  args = p.parse_args(argv)
  only = args.only.split(",")
  print_kernels(only)
  if not set(only) & {"train", "data", "ckpt", "sampler", "rl", "layers"}:
    return
  config = config_lib.override(config_lib.load(args.config), parse_set(args.set))
  if "layers" in only:
    print_layers(config)
  s = Setup(config)
  peak, src = peak_flops_per_device(config.train.peak_flops)
  print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}; peak "
        f"{peak / 1e9:.0f} GFLOP/s ({src}); model {param_count(s.abs_params) / 1e6:.1f}M params, "
        f"batch {config.train.batch_size} x {config.data.seq_len} tokens")
  step_s = print_step(s, peak) if "train" in only else 1.0
  print_around_step(s, only, step_s, args, peak)


if __name__ == "__main__":
  main()
