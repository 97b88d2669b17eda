"""Each built-in probe: deterministic items, the section keys readers rely on, its headline."""
import jax
import numpy as np
import pytest

from rf_jax import probes
from rf_jax.probes.bits_per_byte import validation_rows
from rf_jax.runs import Run
from rf_jax.step import loss_fn
from rf_jax.train_state import abstract_model, init_state, make_optimizer, make_schedule, \
    mesh_rules, model_config
from rf_jax.vocab import phase1_vocab, text_vocab

from helpers import load_config, mesh_of

DOCS = [f"Document {i}: the quick brown fox jumps over {i} lazy dogs. " * (1 + i % 4)
        for i in range(20)]


def context(tokenizer="chars", families=("copy", "add"), **data):
  config = load_config("phase1", "tiny")
  config.data.update(tasks=tuple(families), tokenizer=tokenizer, **data)
  vocab = phase1_vocab() if tokenizer == "chars" else text_vocab(tokenizer)
  meta = {"config": config.to_dict(), "step": 10}
  run = Run("w", 10, config, vocab, meta, None, None, None)
  return probes.Context(run, tuple(families), n_per=3)


def fake_results(items, exact=1.0):
  keys = dict.fromkeys(it.key for it in items)
  return {k: {"exact": exact, "score": exact, "n": 3} for k in keys}


def same_items(a, b):
  return [(x.key, x.example) for x in a] == [(y.key, y.example) for y in b]


@pytest.mark.parametrize("name,keys", [
    ("levels", {"families", "in_distribution", "out_of_distribution"}),
    ("renamed", {"level", "families", "mean"}),
    ("brainfuck", {"levels", "mean"}),
    ("befunge", {"levels", "mean"}),
    ("esolang_write", {"tasks", "bf_write", "befunge_write", "interpret_seconds", "runs"}),
])
def test_greedy_probes_have_deterministic_items_and_their_sections(name, keys):
  probe, ctx = probes.get(name), context()
  assert probe.applies(ctx)
  items = probe.items(ctx)
  assert items and same_items(items, probe.items(context()))
  assert len(items) == len({it.key for it in items}) * ctx.n_per
  for it in items[:5]:
    ctx.run.vocab.encode(it.example.prompt + it.example.answer)  # tokenisable
  section = probe.summarize(ctx, fake_results(items))
  assert set(section) == keys
  head = probe.headline(section)
  assert set(head) == set(probe.metrics) and all(v == 1.0 for v in head.values())
  assert probe.table(section) and all(p.x and len(p.x) == len(p.y) for p in probe.panels(section))


def test_levels_splits_in_and_out_of_distribution_per_family():
  probe, ctx = probes.get("levels"), context()
  items = probe.items(ctx)
  results = {k: {"exact": float(k[1] <= 2), "score": 0.0, "n": 3}
             for k in fake_results(items)}  # right on the trained levels 1-2 only
  section = probe.summarize(ctx, results)
  assert section["families"]["add"]["trained_levels"] == [1, 2]
  assert set(section["families"]["copy"]["levels"]) == {"1", "2", "3", "4"}
  assert probe.headline(section) == {"in_distribution": 1.0, "out_of_distribution": 0.0}
  wider = probes.Context(ctx.run, ctx.families, 3, train_levels=(1, 3))
  assert probe.summarize(wider, results)["in_distribution"] == pytest.approx(2 / 3)


def test_renamed_skips_english_families_and_bridging_needs_text_and_verbal_families():
  renamed, bridging = probes.get("renamed"), probes.get("bridging")
  assert not renamed.applies(context(families=("verbal_add",)))
  assert not bridging.applies(context("chars", ("copy", "verbal_copy")))
  assert not bridging.applies(context("bytes", ("copy",)))
  ctx = context("bytes", ("copy", "verbal_copy", "verbal_add"))
  assert bridging.applies(ctx)
  items = bridging.items(ctx)
  assert {it.key for it in items} == {("verbal_copy", 1), ("verbal_add", 1)}
  assert same_items(items, bridging.items(context("bytes", ("copy", "verbal_copy", "verbal_add"))))
  section = bridging.summarize(ctx, fake_results(items, 0.5))
  assert set(section) == {"level", "families", "mean"}
  assert bridging.headline(section) == {"bridging_L1": 0.5}


def test_bits_per_byte_measures_the_validation_text(tmp_path):
  for i, doc in enumerate(DOCS):
    (tmp_path / f"d{i}.txt").write_text(doc)
  files = (f"{tmp_path}/*.txt",)
  probe = probes.get("bits_per_byte")
  assert not probe.applies(context("chars", text_files=files))
  ctx = context("bytes", text_files=files, validation_fraction=0.3, validation_rows=4)
  assert probe.applies(ctx) and probe.items(ctx) == []
  rows = validation_rows(ctx.config, ctx.run.vocab)
  assert all(np.array_equal(v, validation_rows(ctx.config, ctx.run.vocab)[k])
             for k, v in rows.items())
  config, vocab = ctx.config, ctx.run.vocab
  mesh = mesh_of((1, 1, 1))
  graphdef, _ = abstract_model(model_config(config, vocab), mesh, mesh_rules(config))
  params = init_state(model_config(config, vocab), make_optimizer(make_schedule(1e-3, 1, 10),
                      0.0, 0.9, 0.98, 1.0), mesh, mesh_rules(config), 0)["params"]
  run = Run("w", 10, config, vocab, ctx.run.meta, graphdef, params, mesh)
  ctx = probes.Context(run, ctx.families, 3)
  section = probe.summarize(ctx, {})
  assert set(section) == {"bits_per_byte", "loss", "perplexity", "rows"}
  assert section["rows"] == len(rows["inputs"]) <= 4
  with jax.set_mesh(mesh):  # the loss training optimises, on the same rows
    train_loss = float(loss_fn(params, graphdef, rows, allowed=vocab.allowed())[0])
  assert abs(section["loss"] - train_loss) < 1e-5
  assert probe.headline(section) == {"bits_per_byte": section["bits_per_byte"]} and \
      section["bits_per_byte"] > 0


def test_headline_covers_every_probe_in_a_report_none_where_it_did_not_apply():
  report = {"probes": {"brainfuck": {"levels": {}, "mean": 0.25}, "bridging": None}}
  assert probes.headline(report) == {"brainfuck": 0.25, "bridging_L1": None}
  assert probes.metric_names("brainfuck,bits_per_byte") == ("brainfuck", "bits_per_byte")
