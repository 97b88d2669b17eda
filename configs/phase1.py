"""Phase 1: synthetic reasoning pretraining (next-token) over the task curriculum.

Presets: `configs/phase1.py` (default: the CPU run in the README), `:rl` (reward only, from
scratch, two families), `:reward` (reward only, from scratch, the default run's families),
`:mixed` (next-token + reward every step), `:tiny` (tests, seconds), `:bench` (~25M
params, the CPU benchmark preset), `:bench125m` (~114M params, bf16: the accelerator
benchmark preset); several apply in turn (`:tiny,reward`). Any field can be overridden,
e.g. `--config.train.steps=200 --config.mesh.shape='(2,2,2)'`.
"""
import ml_collections

# All built-in families (rf_jax/tasks/algorithmic.py and reasoning.py).
ALL_TASKS = ("copy", "reverse", "sort", "add", "parity", "dyck", "mul", "modarith", "pointer",
             "reach", "boolean", "eca", "stack", "kdyck", "induct")


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "phase1"
  c.phase = 1
  c.seed = 0
  c.init_from = ""              # a workdir or <workdir>/checkpoints/<step> of an earlier phase

  c.model = ml_collections.ConfigDict(dict(
      d_model=128, n_layers=4, n_heads=4, mlp_dim=512, position="rope", rope_base=10_000.0,
      attention_window=0, attention_block=128,
      dtype="float32",          # activations and matmuls; bfloat16 = mixed precision (params,
      param_dtype="float32",    # optimizer state and loss stay float32)
      remat=False, remat_policy="full",  # full | dots_with_no_batch_dims_saveable | dots_saveable
      scan_layers=False,        # stack the blocks and run them with one lax.scan (fast compiles)
      # kernel: auto | masked | blocked | window | dot_product | splash (rf_jax.attention);
      # auto takes the vendor's fused kernel on a GPU (cuDNN) or a TPU (splash)
      attention="auto",
      attention_modules=(),  # modules or .py files that register more kernels
      vocab_multiple=128,  # embedding rows rounded up so the vocab axis shards evenly
  ))

  c.data = ml_collections.ConfigDict(dict(
      source="tasks",           # tasks | text (configs/phase3.py)
      tokenizer="chars",        # chars (one symbol per character) | bytes | sentencepiece
      extra_symbols="",         # characters appended to rf_jax.vocab.SYMBOLS for your tasks
      tasks=ALL_TASKS,          # registered task names (the command line takes a,b,c too)
      weights=(),               # one per task; empty = uniform
      weights_end=(),           # if set, weights move linearly to these by the last step
      levels=(1, 3),            # inclusive range of training levels; 4 stays held out
      seq_len=128,              # tokens per packed row (level-4 examples need ~85)
      use_trace=False,          # train on step-by-step traces where tasks have them
      task_modules=(),          # modules or .py files that register more tasks
      num_threads=1,
      prefetch=4,
      # text (data.source=text, configs/phase3.py) and the sentencepiece tokenizer:
      text_files=("builtin:python_docs",),  # globs of .txt .jsonl .parquet .arrayrecord (gs:// too)
      text_field="text",        # the field holding the text in .jsonl/.parquet/.arrayrecord
      validation_fraction=0.02, # documents held out for bits-per-byte
      validation_rows=64,
      replay_fraction=0.0,      # share of text-phase rows that are task examples
      sp_vocab_size=1024,       # with tokenizer=sentencepiece: pieces trained on text_files
  ))

  c.curriculum = ml_collections.ConfigDict(dict(
      kind="adaptive",          # fixed | scheduled | adaptive (rf_jax/curriculum.py)
      mix_lower=0.25,           # share of examples from levels below the current one
      raise_at=0.9, lower_at=0.1, min_examples=200,
      # reward steps: this many families at a time get focus_share of the prompts, each
      # staying while the log-odds of its first level's mean reward over a focus_window of
      # steps rise by focus_gain and its exact match is below raise_at (rf_jax/focus.py);
      # 0 = off. A family that beat its bar may then miss it focus_patience windows; one
      # that left as learned keeps focus_keep times its weight.
      focus=0, focus_share=0.5, focus_window=500, focus_gain=0.25, focus_patience=0,
      focus_keep=1.0,
  ))

  c.train = ml_collections.ConfigDict(dict(
      steps=1000, batch_size=32, learning_rate=3e-3, warmup_steps=100, end_lr_fraction=0.1,
      decay_over="steps",       # budget: the cosine decays over the share of train.flop_budget
                                # (or of train.steps) spent, for runs whose step cost varies
      weight_decay=0.1, b1=0.9, b2=0.98, grad_clip=1.0,
      log_every=50, eval_every=400, eval_examples=64, eval_levels=(1, 2),
      eval_tasks=(),            # task names; empty = data.tasks
      checkpoint_every=400, keep_checkpoints=3, async_checkpoint=True,
      peak_flops=0.0,           # per-device FLOP/s for MFU; 0 = table or measured
      preemption_sync_every=10, # with several processes: steps between SIGTERM agreements
      time_budget_s=0.0,        # > 0: stop after this many seconds of training (then evaluate)
      flop_budget=0.0,          # > 0: stop once the run's counted FLOPs reach this (resumes
                                # count what the run spent before)
      skip_nonfinite=0,         # > 0: skip up to this many steps with a non-finite loss or
                                # gradient (no update) before stopping; 0: stop at the first
  ))

  c.objective = ml_collections.ConfigDict(dict(
      kind="next_token",        # next_token | rl | mixed | schedule (next_token, then rl) | yours
      switch_step=0,            # schedule: the first rl step
      rl_weight=0.5,            # mixed: loss = (1 - w) * next_token + w * rl, every step
      modules=(),               # modules or .py files that register more objectives
  ))

  c.rl = ml_collections.ConfigDict(dict(
      prompts=32,               # prompts per step; each is sampled group_size times
      group_size=8,
      temperature=1.0, top_k=0,
      prompt_len=0,             # tokens, left-padded; 0 = each step's longest prompt
      max_new=0,                # completion tokens (<eos> included); 0 = each family's and
                                # level's longest answer (+ the scratchpad)
      scratchpad=0,             # > 0: up to this many free tokens before <ans>; only what
                                # follows <ans> is scored
      scratchpad_cost=0.0,      # reward subtracted per scratchpad token
      pack=True,                # pack samples into update rows (False: one padded row each)
      share_prompts=True,       # a group's prompt prefilled once in sampling and written once
                                # in the packed rows, its completions branching from it
      pack_len=0,               # tokens per packed row; 0 = 128 or the longest sample
      redraw=0,                 # rounds of new prompts for groups whose rewards were all equal
      learnability=False,       # draw families and levels by pass rate p (1 - p)
      solved_weight=1.0,        # < 1: a family's prompts weigh this much when its current
                                # level is solved, 1 when it is failed, linear between
      solved_level="current",   # the level solved_weight reads: current | first (a family
                                # whose first level is solved yields to those not yet learned)
      advantage="grpo",         # grpo: (r - mean) / std | rloo: r - the others' mean |
                                # mean: r - mean | log: (r - mean) / mean, the gradient of
                                # log E[r] | batch: rloo over the step's samples of a family
                                # and level (a group that agrees still teaches). With
                                # credit=token, r is each position's reward-to-go
      credit="sequence",        # sequence: one reward per sample | token: Task.token_rewards
      token_discount=1.0,       # credit=token: 1 = reward-to-go (unbiased), 0 = own reward only
      clip_eps=0.2,             # PPO ratio clip, active when updates_per_batch > 1
      updates_per_batch=1,
      kl_coef=0.0,              # > 0: k3 KL toward the initial (or init_from) parameters
      entropy_coef=0.0,         # > 0: entropy bonus, keeps a from-scratch policy exploring
      entropy_target=0.0,       # > 0: the bonus acts only on actions below this entropy (nats)
      answer_alphabet=False,    # sample each answer from its family's characters only
                                # (Task.answer_alphabet) and <eos>
      alphabet_coef=1.0,        # with answer_alphabet: weight of -log(the unrestricted
                                # model's mass inside the alphabet), so greedy needs no mask
      entropy_share=0.0,        # > 0: an answer's entropy floor is at least this share of
                                # log(its family's alphabet or the vocabulary) x (1 - the
                                # pass rate of its family and level)
      action_floor=0.0,         # > 0: each choice the sampler allows keeps at least this
                                # share / #choices of the probability (hinge on log p,
                                # weighted by entropy_coef), so no choice (<eos>) starves
      replay=0,                 # > 0: keep this many exact answers the policy found per family
                                # and level, and replay them (self-imitation, rf_jax/replay.py)
      replay_samples=32,        # kept answers replayed in each update, families drawn by
                                # 1 - their pass rate
      replay_floor=0.0,         # the least replay weight of a family and level (else
                                # 1 - its pass rate), so what is learned is rehearsed
      replay_priority=1.0,      # the draw weight, within its family and level, of a kept
                                # answer the greedy policy wrote when last replayed, against
                                # 1 for the others (1: uniform)
      replay_coef=1.0,          # the advantage of every replayed token
      pass_rate="samples",      # what the curriculum, the floors and solved_weight read:
                                # samples (the sampled policy's exact match) | greedy (the
                                # greedy policy's, teacher-forced on each prompt's answer in
                                # the update rows; not with a scratchpad)
  ))

  c.mesh = ml_collections.ConfigDict(dict(
      shape=(-1, 1, 1),         # (data, fsdp, tensor); -1 takes the remaining devices
      rules=(("batch", ("data", "fsdp")), ("vocab", "tensor"), ("embed", "fsdp"),
             ("heads", "tensor"), ("mlp", "tensor"), ("kv", None)),
  ))

  for name in filter(None, preset.split(",")):  # "tiny,reward": each in turn, later wins
    if name not in PRESETS:
      raise ValueError(f"unknown preset {name!r} for configs/phase1.py; use "
                       f"{', '.join(PRESETS)} (or several, comma-separated)")
    PRESETS[name](c)
  return c


def _tiny(c):
  c.model.update(d_model=32, n_layers=2, n_heads=2, mlp_dim=64)
  c.data.update(tasks=("copy", "reverse", "sort", "add", "parity", "dyck"), levels=(1, 2),
                seq_len=64)
  c.curriculum.kind = "fixed"
  c.train.update(steps=20, batch_size=8, warmup_steps=2, log_every=5, eval_every=10,
                 eval_examples=8, eval_levels=(1,), checkpoint_every=10)


def _bench(c):
  c.model.update(d_model=512, n_layers=8, n_heads=4, mlp_dim=1536)
  c.data.update(seq_len=512)
  c.train.update(steps=20, batch_size=8, log_every=5, eval_every=0, checkpoint_every=0)


def _bench125m(c):
  # The accelerator benchmark: ~114M parameters, bf16 compute, for one GPU or TPU chip;
  # scanned layers, and auto's fused attention kernel on the accelerator.
  c.model.update(d_model=768, n_layers=12, n_heads=6, mlp_dim=3072, dtype="bfloat16",
                 scan_layers=True)
  c.data.update(seq_len=1024)
  c.train.update(steps=50, batch_size=32, log_every=10, eval_every=0, checkpoint_every=0)


def _rl(c):
  # Reward only, from random initialisation, on two of the easiest families, for a
  # 14-minute wall-clock budget (README: Objectives). The entropy bonus matters: without
  # it groups collapse to one answer and stop giving gradient.
  c.name = "phase1_rl"
  c.objective.kind = "rl"
  c.model.update(d_model=64, n_layers=2, n_heads=4, mlp_dim=256)
  c.data.update(tasks=("copy", "dyck"), levels=(1, 2))
  c.rl.update(prompts=32, group_size=8, prompt_len=24, max_new=8, entropy_coef=0.03)
  # Budgeted by wall clock: the run stops after time_budget_s; steps only stretches the
  # cosine schedule so the learning rate stays near 1e-3 for the whole budget.
  c.train.update(steps=100_000, learning_rate=1e-3, warmup_steps=20, time_budget_s=840,
                 log_every=25, eval_every=1000, eval_levels=(1, 2), checkpoint_every=1000)


def _reward(c):
  # Reward only, from random initialisation, on the default run's families, model and
  # curriculum: groups of 8 with reward per token, each position's advantage divided by its
  # std over the group (grpo), groups whose samples all agree (no advantage) dropped and
  # redrawn up to twice as DAPO does, each answer sampled from its family's alphabet, an
  # entropy floor per answer action of at least 0.5 nats (at 0.2 one seed in three collapsed
  # to a constant answer on parity), raised to 0.8 x log(the alphabet's size) x (1 - the
  # family's pass rate) while a family is unsolved, and every choice kept at >= 0.1 / #choices
  # of the probability. One family at a time takes half of the 32 prompts (the focus): copy
  # makes no progress at a fifteenth of them, nor at half of 16. Each exact answer the policy
  # finds is kept (1024 prompts per family and level) and 128 are replayed in each update
  # (self-imitation), an answer the greedy policy already writes drawn a tenth as often as
  # the others: copy alone reaches 0.95 in 600 steps with replay, 0.30 without; on the 15
  # families 10 reach 0.9 in 100 TFLOP, against 9 with uniform draws and 6 without replay.
  # Measured in docs/results.md. Budget it with train.flop_budget or train.time_budget_s
  # (rf_jax.reward does).
  c.name = "phase1_reward"
  c.objective.kind = "rl"
  c.rl.update(prompts=32, group_size=8, credit="token", advantage="grpo", redraw=2,
              entropy_target=0.5, entropy_coef=1.0, answer_alphabet=True, entropy_share=0.8,
              action_floor=0.1, pass_rate="greedy", replay=1024,
              replay_samples=128, replay_priority=0.1)
  c.curriculum.update(focus=1, focus_share=0.5, focus_window=250)
  # Adam turns noisy reward gradients into full-size steps. A reward step costs what the
  # policy writes, so the cosine follows the FLOP budget (else train.steps) spent.
  c.train.update(learning_rate=1e-3, decay_over="budget")


def _mixed(c):
  # The default phase-1 run, each step also taking a policy-gradient step on rollouts.
  c.name = "phase1_mixed"
  c.objective.update(kind="mixed", rl_weight=0.5)
  c.rl.update(prompts=16, group_size=4, prompt_len=96, max_new=16)


PRESETS = {"tiny": _tiny, "bench": _bench, "bench125m": _bench125m, "rl": _rl,
           "reward": _reward, "mixed": _mixed}
