"""Benchmarks (never timed unit tests): python -m rf_jax.bench [--only=sampler] [--new=256]

sampler: greedy decoding of `--new` tokens with the KV cache against full recomputation,
for the default phase-1 model, batch `--batch`, prompts of `--prompt` tokens.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(path: str, preset: str = ""):
  spec = importlib.util.spec_from_file_location("bench_config", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(preset)


def timed(fn, *args, repeats: int = 3) -> tuple[float, object]:
  out = jax.block_until_ready(fn(*args))  # compile + warm up
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best, out


def bench_sampler(config, new: int, batch: int, prompt_len: int) -> dict:
  from rf_jax.sampling import decode_recompute, sample
  from rf_jax.sharding import make_mesh
  from rf_jax.train import mesh_rules, model_config
  from rf_jax.train_state import abstract_model, init_params_fn
  from rf_jax.vocab import phase1_vocab
  vocab = phase1_vocab()
  mcfg = model_config(config, vocab)
  mesh = make_mesh((1, 1, 1), jax.devices()[:1])
  rules = mesh_rules(config)
  graphdef, _ = abstract_model(mcfg, mesh, rules)
  with jax.set_mesh(mesh):
    params = jax.jit(init_params_fn(mcfg, rules))(jnp.uint32(0))
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(6, vocab.size, size=(batch, prompt_len)), jnp.int32)
  mask = jnp.ones_like(tokens)
  # eos_id=-1: never stop early, so both paths produce exactly `new` tokens.
  cached = jax.jit(functools.partial(sample, graphdef=graphdef, max_new=new,
                                     valid_vocab=vocab.size, eos_id=-1))
  full = jax.jit(functools.partial(decode_recompute, graphdef=graphdef, max_new=new,
                                   valid_vocab=vocab.size))
  with jax.set_mesh(mesh):
    t_cached, a = timed(cached, params, tokens, mask, jax.random.key(0))
    t_full, b = timed(full, params, tokens, mask, repeats=1)
  same = float(np.mean(np.asarray(a) == np.asarray(b)))
  return {"new_tokens": new, "batch": batch, "prompt": prompt_len,
          "cached_s": t_cached, "recompute_s": t_full, "speedup": t_full / t_cached,
          "cached_tokens_per_s": batch * new / t_cached, "same_tokens": same}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog="python -m rf_jax.bench", description=__doc__)
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "phase1.py"))
  p.add_argument("--only", default="sampler")
  p.add_argument("--new", type=int, default=256)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--prompt", type=int, default=32)
  args = p.parse_args(argv)
  path, _, preset = args.config.partition(":")
  config = load_config(path, preset)
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}")
  if "sampler" in args.only:
    r = bench_sampler(config, args.new, args.batch, args.prompt)
    print(f"sampler ({r['batch']} x {r['new_tokens']} new tokens after a {r['prompt']}-token prompt):"
          f" KV cache {r['cached_s']:.2f}s ({r['cached_tokens_per_s']:,.0f} tok/s), "
          f"recompute {r['recompute_s']:.2f}s -> {r['speedup']:.1f}x faster; "
          f"same tokens: {100 * r['same_tokens']:.1f}%")


if __name__ == "__main__":
  main()
