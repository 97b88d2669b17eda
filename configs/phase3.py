"""Phase 3: language modelling on text, with replay of reasoning and bridging examples.

Starts from phase 2's parameters (`init_from`). The default corpus is built in: the
Python standard library's docstrings and language reference (rf_jax/data/corpus.py).
Presets: default (the CPU pipeline in the README), `:baseline` (the same model and token
budget from scratch: the text-first comparison), `:tiny` (tests); combine as `tiny,baseline`.
"""
from rf_jax import config as config_lib


def get_config(preset: str = ""):
  presets = set(filter(None, preset.split(",")))
  if presets - {"tiny", "baseline"}:
    raise ValueError(f"unknown preset {preset!r} for configs/phase3.py; use tiny, baseline "
                     "or tiny,baseline")
  tiny = "tiny" in presets
  c = config_lib.load("phase2.py:tiny" if tiny else "phase2.py")
  families = config_lib.load("phase1.py:tiny" if tiny else "phase1.py").data.tasks
  c.name = "phase3"
  c.phase = 3
  c.init_from = "workdirs/phase2"
  c.data.update(source="text", replay_fraction=0.1)  # text_files etc.: see configs/phase1.py
  n = len(families)  # half symbolic, half verbal, all phase long
  c.data.weights = (0.5,) * (2 * n)
  c.data.weights_end = ()
  c.curriculum.kind = "fixed"
  if tiny:
    c.data.update(validation_rows=8)
    c.train.update(steps=10, eval_every=0, checkpoint_every=10, eval_levels=(1,))
  else:
    c.train.update(steps=240, learning_rate=3e-3, warmup_steps=20, eval_every=0,
                   eval_examples=32, eval_levels=(1, 2), checkpoint_every=120)
  if "baseline" in presets:
    c.name = "phase3_baseline"
    c.init_from = ""  # everything else (data, replay, optimizer, steps) as the pipeline's phase 3
  return c
