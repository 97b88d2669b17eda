"""The thesis experiment: reasoning-first against text-first at matched training FLOPs.

`python -m rf_jax.thesis --config=configs/thesis.py[:preset]` (README: "The thesis
experiment"). Every arm trains the same model. `budget` gives the reference arm's steps per
phase; every other arm gets steps so that each of its phases costs the same FLOPs
(rf_jax/thesis.py: plan). Presets: default (the 2-core CPU version), `tiny` (tests), and
TPU slices `v5e-32`, `v5p-128` (model size, batch and token budgets for that slice; run with
launch/tpu_vm/thesis.sh and a text corpus of your own: --text_files=gs://...).
"""
import ml_collections

# Per slice: chips and their bf16 peak (for the dry run's time estimate), the model, global
# batch (rows of seq_len tokens; a multiple of the chip count) and the reference arm's steps.
# The dry run (python -m rf_jax.thesis --config=configs/thesis.py:v5e-32 --text_files=X
# --dry-run) prints every run's steps, tokens and FLOPs. Reference arm, per seed:
#   v5e-32:  114M parameters, 1.31B + 0.26B + 2.62B tokens (phases 1/2/3; 37 per parameter),
#            12.4 EFLOP per seed for all four arms: ~1.4 h per seed at 40% MFU;
#   v5p-128: 403M parameters, 5.24B + 1.05B + 10.5B tokens (42 per parameter),
#            172 EFLOP per seed: ~4.1 h per seed at 40% MFU.
SLICES = {
    "v5e-32": dict(
        chips=32, peak=197e12,
        model=dict(d_model=768, n_layers=12, n_heads=12, mlp_dim=3072, remat=False),
        batch=256, seq_len=1024, window=128, prompts=256,
        budget=dict(phase1=5000, phase2=1000, phase3=10000, finetune=500)),
    "v5p-128": dict(
        chips=64, peak=459e12,
        model=dict(d_model=1024, n_layers=24, n_heads=16, mlp_dim=4096, remat=True),
        batch=512, seq_len=1024, window=128, prompts=512,
        budget=dict(phase1=10000, phase2=2000, phase3=20000, finetune=1000)),
}


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "thesis"
  c.seeds = "0,1,2"
  c.arms = "text_first,reasoning_first,reasoning_first_reward,reasoning_memory"
  c.phase_preset = ""          # preset given to every phase config (configs/phase*.py)
  # (dotted config key, value) pairs given to every run, after the phase preset
  c.common = ()
  c.examples = 64              # evaluator examples per family and level
  c.train_levels = (1, 3)      # in-distribution levels; higher ones are out of distribution
  # steps of the reference arm (reasoning_first) per phase; the text-first fine-tune's own
  c.budget = ml_collections.ConfigDict(dict(phase1=500, phase2=180, phase3=120, finetune=60))
  c.window = 32                # reasoning_memory: the small attention window, in every phase
  # reasoning_first_reward: phase 1 also takes a policy-gradient step on rollouts each step
  c.reward = ml_collections.ConfigDict(dict(
      kind="mixed", rl_weight=0.5, prompts=16, group_size=4, prompt_len=96, max_new=16))
  c.extra = ""                 # flags passed to every run, e.g. "--config.mesh.shape=(-1,1,1)"
  c.text_files = ""            # the text runs' corpus (data.text_files); empty: the built-in
  c.text_files_required = False
  c.slice = ml_collections.ConfigDict(dict(name="", chips=0, peak=0.0))

  if preset == "tiny":
    c.seeds = "0,1"
    c.phase_preset = "tiny"
    c.examples = 4
    c.train_levels = (1, 2)
    c.budget.update(phase1=8, phase2=6, phase3=6, finetune=3)
    c.window = 8
    c.reward.update(prompts=4, group_size=2, prompt_len=40, max_new=8)
  elif preset in SLICES:
    s = SLICES[preset]
    c.slice.update(name=preset, chips=s["chips"], peak=s["peak"])
    c.common = tuple(
        [(f"model.{k}", v) for k, v in s["model"].items()] +
        [("model.dtype", "bfloat16"), ("data.seq_len", s["seq_len"]), ("data.num_threads", 8),
         ("train.batch_size", s["batch"]), ("train.learning_rate", 6e-4),
         ("train.warmup_steps", 200), ("train.log_every", 100), ("train.eval_every", 2500),
         ("train.eval_examples", 256), ("train.checkpoint_every", 1000),
         ("train.keep_checkpoints", 2)])
    c.examples = 256
    c.budget.update(s["budget"])
    c.window = s["window"]
    c.reward.update(prompts=s["prompts"], group_size=8)
    # ~2.6B+ text tokens: the built-in corpus (a few MB) would be repeated hundreds of times
    c.text_files_required = True
  elif preset:
    raise ValueError(f"unknown preset {preset!r} for configs/thesis.py; use '', tiny, "
                     + ", ".join(SLICES))
  return c
