"""The thesis experiment: reasoning-first against text-first at matched training FLOPs.

`python -m rf_jax.thesis --config=configs/thesis.py[:preset]` (README: "The thesis
experiment"). Every arm trains the same model. `budget` gives the reference arm's steps per
phase; every other arm gets steps so that each of its phases costs the same FLOPs
(rf_jax/thesis.py: plan). Presets: default (the 2-core CPU version), `tiny` (tests).
"""
import ml_collections


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "thesis"
  c.seeds = "0,1,2"
  c.arms = "text_first,reasoning_first,reasoning_first_reward,reasoning_memory"
  c.phase_preset = ""          # preset given to every phase config (configs/phase*.py)
  c.examples = 64              # evaluator examples per family and level
  c.train_levels = (1, 3)      # in-distribution levels; higher ones are out of distribution
  # steps of the reference arm (reasoning_first) per phase; the text-first fine-tune's own
  c.budget = ml_collections.ConfigDict(dict(phase1=500, phase2=180, phase3=120, finetune=60))
  c.window = 32                # reasoning_memory: the small attention window, in every phase
  # reasoning_first_reward: phase 1 also takes a policy-gradient step on rollouts each step
  c.reward = ml_collections.ConfigDict(dict(
      kind="mixed", rl_weight=0.5, prompts=16, group_size=4, prompt_len=96, max_new=16))
  c.extra = ""                 # flags passed to every run, e.g. "--config.mesh.shape=(-1,1,1)"

  if preset == "tiny":
    c.seeds = "0,1"
    c.phase_preset = "tiny"
    c.examples = 4
    c.train_levels = (1, 2)
    c.budget.update(phase1=8, phase2=6, phase3=6, finetune=3)
    c.window = 8
    c.reward.update(prompts=4, group_size=2, prompt_len=40, max_new=8)
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/thesis.py; use '' or tiny")
  return c
