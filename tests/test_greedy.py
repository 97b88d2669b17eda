"""Greedy evaluation: prompt buckets and chunks, and what counts as an exact match."""
import numpy as np

from rf_jax import tasks
from rf_jax.esolang_judge import Stopwatch, spelling
from rf_jax.greedy import GreedyEvaluator, Item, bucket_length, chunks, score_outputs
from rf_jax.probes.esolang_write import write_items
from rf_jax.train_state import abstract_model, init_state, make_optimizer, make_schedule, \
    mesh_rules, model_config
from rf_jax.vocab import phase1_vocab

from helpers import load_config, mesh_of


def test_buckets_are_unchanged_below_256_tokens_and_coarser_above():
  assert [bucket_length(n, 32) for n in (1, 32, 33, 200, 255)] == [32, 32, 64, 224, 256]
  assert [bucket_length(n, 32) for n in (257, 511, 513, 1000)] == [320, 512, 640, 1024]
  for n in range(1, 3000):
    b = bucket_length(n, 32)
    assert n <= b <= max(n + 31, 1.25 * n), n
  lengths = range(290, 770)  # the program-writing prompts: 7 shapes, not 16
  assert len({bucket_length(n, 32) for n in lengths}) == 7
  assert len({-(-n // 32) * 32 for n in lengths}) == 16


def test_chunks_are_equal_and_bounded():
  assert chunks(list(range(10)), 4, 1) == [([0, 1, 2, 3], 4), ([4, 5, 6, 7], 4), ([8, 9], 4)]
  assert chunks(list(range(10)), 100, 8) == [(list(range(10)), 16)]
  parts = chunks(list(range(1000)), 170, 8)
  assert {size for _, size in parts} == {168} and sum(len(c) for c, _ in parts) == 1000


def test_exact_is_the_answers_text_or_a_full_score_for_many_answer_items():
  copy = tasks.get("copy")
  ex = tasks.Example("copy:ab", "ab")
  lenient = lambda e, out: 1.0 if out.upper() == e.answer.upper() else 0.0
  items = [Item(("a",), ex, copy.score), Item(("b",), ex, lenient),
           Item(("c",), ex, lenient, exact_by_score=True)]
  res = score_outputs(items, ["AB", "AB", "AB"])
  assert [res[k]["exact"] for k in (("a",), ("b",), ("c",))] == [0.0, 0.0, 1.0]
  assert res[("b",)]["score"] == 1.0 and res[("a",)]["n"] == 1


def test_padding_to_a_longer_bucket_does_not_change_what_is_decoded():
  config = load_config()
  vocab = phase1_vocab()
  mesh = mesh_of((1, 1, 1))
  cfg = model_config(config, vocab)
  graphdef, _ = abstract_model(cfg, mesh, mesh_rules(config))
  params = init_state(cfg, make_optimizer(make_schedule(1e-3, 1, 10), 0.0, 0.9, 0.98, 1.0),
                      mesh, mesh_rules(config), 0)["params"]
  items = write_items(0, 1, spelling(vocab), Stopwatch(), levels=(1,))[:4]
  for it in items:
    it.max_new = 16
  outs = [GreedyEvaluator(items, graphdef, mesh, vocab, False, bucket=b).generate(params)
          for b in (32, 1024)]
  assert outs[0] == outs[1] and all(isinstance(o, str) for o in outs[0])
  # A bound on the tokens of one call splits a bucket into chunks: the same outputs.
  chunked = GreedyEvaluator(items, graphdef, mesh, vocab, False, bucket=1024, max_tokens=2048)
  assert [len(idx) for idx, *_ in chunked._buckets] == [2, 2]
  assert chunked.generate(params) == outs[0]
  assert len({len(vocab.encode(it.example.prompt)) for it in items}) > 1
  assert np.all([len(o) <= 16 for o in outs[0]])
