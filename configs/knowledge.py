"""Knowledge apart from reasoning: a small-window reasoner reading an external memory bank.

`python -m rf_jax.knowledge --config=configs/knowledge.py` trains a retriever, builds the
memory banks, trains the memory-augmented reasoner and a full-context model that keeps
the facts in its weights, and evaluates both on the training bank and on a freshly
generated bank (README: "Memory bank and retriever"). Presets: default (the README table,
~10 min on 2 CPU cores), `:tiny` (tests, seconds).
"""
import ml_collections


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "knowledge"
  c.seed = 0

  c.kb = ml_collections.ConfigDict(dict(
      n_entities=200,           # per bank; chance of guessing an answer is 1 / n_entities
      n_relations=4,
      name_len=3,
      train_banks=8,            # the reasoner trains on these banks (seeds 1..train_banks)
      fresh_seed=10_000,        # the evaluation bank: new entities, new facts
      large_entities=2000,      # a second fresh bank, 10x larger (seed fresh_seed + 1)
      max_hops=3,
      eval_questions=256,       # per (bank, hops)
  ))

  c.retriever = ml_collections.ConfigDict(dict(
      d_model=64, n_layers=2, n_heads=4, mlp_dim=256, dim=128, temperature=0.05,
      steps=600, batch_entities=32, learning_rate=2e-3, warmup_steps=50,
  ))

  c.memory = ml_collections.ConfigDict(dict(
      top_k=4,                  # facts placed before the question at each hop
  ))

  # The reasoner (with retrieval) and the full-context model (facts in its weights) share
  # this architecture except the window.
  c.model = ml_collections.ConfigDict(dict(
      d_model=128, n_layers=4, n_heads=4, mlp_dim=512, position="rope", rope_base=10_000.0,
      attention_window=64, dtype="float32", param_dtype="float32", remat=False,
  ))

  c.train = ml_collections.ConfigDict(dict(
      seq_len=64, batch_size=64, steps=1000, learning_rate=2e-3, warmup_steps=100,
      end_lr_fraction=0.1, weight_decay=0.1, b1=0.9, b2=0.98, grad_clip=1.0,
      full_context_steps=1500, log_every=100,
  ))

  if preset == "tiny":
    c.kb.update(n_entities=24, train_banks=2, eval_questions=16, large_entities=48)
    c.retriever.update(d_model=32, n_layers=1, mlp_dim=64, dim=16, steps=40, batch_entities=8)
    c.model.update(d_model=32, n_layers=2, mlp_dim=64)
    c.train.update(steps=30, batch_size=16, full_context_steps=20, log_every=10)
  elif preset:
    raise ValueError(f"unknown preset {preset!r}; choose one of: '', 'tiny'")
  return c
