"""Phase 2: bridging. The phase-1 problems stated in English, mixed with their symbolic form.

Starts from phase 1's parameters (`init_from`) with the vocabulary grown by 256 byte
tokens; every string is tokenised as bytes from here on. The mixture moves from mostly
symbolic to mostly verbal over the phase (`data.weights` -> `data.weights_end`).
Presets: default (the CPU pipeline in the README), `:tiny` (tests).
"""
from rf_jax import config as config_lib

BASE = config_lib.load("phase1.py").data.tasks
TINY = config_lib.load("phase1.py:tiny").data.tasks


def verbal(families: tuple[str, ...]) -> tuple[str, ...]:
  return tuple("verbal_" + f for f in families)


def bridging_mixture(c, families: tuple[str, ...], start_verbal: float, end_verbal: float) -> None:
  n = len(families)
  c.data.tasks = tuple(families) + verbal(families)
  c.data.weights = (1 - start_verbal,) * n + (start_verbal,) * n
  c.data.weights_end = (1 - end_verbal,) * n + (end_verbal,) * n
  c.train.eval_tasks = verbal(families)


def get_config(preset: str = ""):
  presets = set(filter(None, preset.split(",")))
  if presets - {"tiny"}:
    raise ValueError(f"unknown preset {preset!r} for configs/phase2.py; use tiny")
  tiny = "tiny" in presets
  c = config_lib.load("phase1.py:tiny" if tiny else "phase1.py")
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
