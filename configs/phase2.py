"""Phase 2: bridging. The phase-1 problems stated in English, mixed with their symbolic form.

Starts from phase 1's parameters (`init_from`) with the vocabulary grown by 256 byte
tokens; every string is tokenised as bytes from here on. The mixture moves from mostly
symbolic to mostly verbal over the phase (`data.weights` -> `data.weights_end`).
Presets: default (the CPU pipeline in the README), `:tiny` (tests).
"""
import importlib.util
import os

BASE = ("copy,reverse,sort,add,parity,dyck,mul,modarith,pointer,reach,boolean,eca,stack,kdyck,"
        "induct")
TINY = "copy,reverse,sort,add,parity,dyck"


def _phase1(preset: str):
  spec = importlib.util.spec_from_file_location(
      "rf_jax_configs_phase1", os.path.join(os.path.dirname(os.path.abspath(__file__)), "phase1.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def verbal(families: str) -> str:
  return ",".join("verbal_" + f for f in families.split(","))


def bridging_mixture(c, families: str, start_verbal: float, end_verbal: float) -> None:
  n = len(families.split(","))
  c.data.tasks = families + "," + verbal(families)
  c.data.weights = ",".join([str(1 - start_verbal)] * n + [str(start_verbal)] * n)
  c.data.weights_end = ",".join([str(1 - end_verbal)] * n + [str(end_verbal)] * n)
  c.train.eval_tasks = verbal(families)


def get_config(preset: str = ""):
  presets = set(filter(None, preset.split(",")))
  if presets - {"tiny"}:
    raise ValueError(f"unknown preset {preset!r} for configs/phase2.py; use tiny")
  tiny = "tiny" in presets
  c = _phase1("tiny" if tiny else "")
  c.name = "phase2"
  c.phase = 2
  c.init_from = "workdirs/phase1"
  c.data.tokenizer = "bytes"
  c.data.levels = (1, 2)
  bridging_mixture(c, TINY if tiny else BASE, start_verbal=0.2, end_verbal=0.8)
  c.curriculum.kind = "fixed" if tiny else "adaptive"
  if tiny:
    c.data.seq_len = 160
    c.train.update(steps=10, eval_every=0, checkpoint_every=10, eval_levels=(1,))
  else:
    c.data.seq_len = 256
    c.train.update(steps=360, learning_rate=1e-3, warmup_steps=30, eval_every=0,
                   eval_examples=32, eval_levels=(1, 2), checkpoint_every=200)
  return c
