"""Stacked (model.scan_layers) and unrolled layer layouts: conversion, and checkpoints of
either layout reloaded (rf_jax.load), handed off (init_from) into the other, or refused
with one line when a run would resume in the other."""
import json

import jax
import numpy as np
import pytest

import rf_jax
from rf_jax import layout, train
from rf_jax.checkpoint import stored_shapes
from rf_jax.errors import ConfigError
from rf_jax.runs import load_run
from tests.helpers import load_config, run_on_one_device

UNROLLED = {"params/embed": (8, 4), "params/blocks/0/attn/wq": (4, 2, 2),
            "params/blocks/1/attn/wq": (4, 2, 2), "params/blocks/0/mlp_norm/scale": (4,),
            "params/blocks/1/mlp_norm/scale": (4,), "opt_state/0/mu/blocks/1/attn/wq": (4, 2, 2),
            "opt_state/0/mu/blocks/0/attn/wq": (4, 2, 2)}
STACKED = {"params/embed": (8, 4), "params/blocks/attn/wq": (2, 4, 2, 2),
           "params/blocks/mlp_norm/scale": (2, 4), "opt_state/0/mu/blocks/attn/wq": (2, 4, 2, 2)}


def test_shapes_convert_both_ways():
  assert layout.names_stacked(UNROLLED) is False and layout.names_stacked(STACKED) is True
  assert layout.names_stacked({"params/embed": (8, 4)}) is None
  assert layout.shapes_as(UNROLLED, True) == STACKED
  assert layout.shapes_as(STACKED, False) == UNROLLED
  assert layout.shapes_as(STACKED, True) == STACKED


def test_params_convert_both_ways():
  rng = np.random.default_rng(0)
  params = {"embed": rng.standard_normal((8, 4), np.float32),
            "blocks": {i: {"attn": {"wq": rng.standard_normal((4, 2), np.float32)}} for i in range(3)}}
  stacked = layout.convert(params, True)
  assert layout.is_stacked(stacked) and not layout.is_stacked(params)
  np.testing.assert_array_equal(stacked["blocks"]["attn"]["wq"][2], params["blocks"][2]["attn"]["wq"])
  back = layout.convert(stacked, False)
  assert sorted(back["blocks"]) == [0, 1, 2]
  jax.tree.map(np.testing.assert_array_equal, back, params)
  assert layout.convert(params, False) is params


def test_layout_hint_names_the_setting():
  hint = layout.layout_hint(STACKED, UNROLLED)
  assert "set --config.model.scan_layers=True" in hint and "\n" not in hint
  assert "scan_layers=False" in layout.layout_hint(UNROLLED, STACKED)
  assert layout.layout_hint(UNROLLED, UNROLLED) == "" == layout.layout_hint({}, STACKED)


# --- checkpoints -------------------------------------------------------------------------

def tiny(scan: bool, steps: int = 3, **model):
  c = load_config()
  c.model.update(scan_layers=scan, **model)
  c.train.update(steps=steps, log_every=1, eval_every=0, checkpoint_every=steps, eval_levels=())
  return c


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A tiny run in each layout (3 steps, one device)."""
  root = tmp_path_factory.mktemp("layout")
  for scan in (False, True):
    run_on_one_device(tiny(scan), root / f"scan{scan}")
  return root


def param_tree(workdir, scan_layers=None):
  return load_run(str(workdir), mesh=None, scan_layers=scan_layers).params


@pytest.mark.slow
@pytest.mark.parametrize("scan", [False, True])
def test_load_into_the_other_layout_generates_the_same(runs, scan):
  workdir = str(runs / f"scan{scan}")
  assert ("params/blocks/attn/wq" in stored_shapes(f"{workdir}/checkpoints/3/state")) == scan
  own = rf_jax.load(workdir, devices=jax.devices()[:1])
  other = rf_jax.load(workdir, devices=jax.devices()[:1], scan_layers=not scan)
  assert other.config.model.scan_layers == (not scan) and own.config.model.get("scan_layers") == scan
  assert layout.is_stacked(other.run.params) == (not scan)
  jax.tree.map(np.testing.assert_array_equal, layout.convert(other.run.params, scan), own.run.params)
  prompts = ["add:12+35", "rev:abc", "sort:3142"]
  assert other.generate(prompts, max_new=8) == own.generate(prompts, max_new=8)
  a, b = own.inspect("dyck:(()"), other.inspect("dyck:(()")  # inspect unrolls a stacked model
  np.testing.assert_allclose(a["attention"], b["attention"], atol=1e-6)
  assert a["hidden"].shape[0] == own.config.model.n_layers + 1


@pytest.mark.slow
@pytest.mark.parametrize("scan", [False, True])
def test_init_from_hands_off_into_the_other_layout(runs, scan, tmp_path):
  c = tiny(not scan, steps=1)
  c.init_from = str(runs / f"scan{scan}")
  run_on_one_device(c, tmp_path / "next")  # saves the handoff point, step 0
  run = load_run(str(tmp_path / "next"), 0)
  handed, old = run.params, param_tree(c.init_from, not scan)
  assert layout.is_stacked(handed) == (not scan)
  # the token rows past the vocabulary (table padding) start fresh; everything else carries
  n = run.vocab.size
  np.testing.assert_array_equal(handed.pop("embed")[:n], old.pop("embed")[:n])
  np.testing.assert_array_equal(handed.pop("unembed")[:, :n], old.pop("unembed")[:, :n])
  jax.tree.map(np.testing.assert_array_equal, handed, old)


@pytest.mark.slow
@pytest.mark.parametrize("scan", [False, True])
def test_resuming_in_the_other_layout_says_what_to_set(runs, scan, tmp_path):
  c = tiny(not scan, steps=5)
  with pytest.raises(ConfigError) as e:
    train.run(c, str(runs / f"scan{scan}"))
  message = str(e.value)
  assert f"set --config.model.scan_layers={scan} to resume it" in message and "\n" not in message
  assert (runs / f"scan{scan}" / "checkpoints" / "3").exists()  # nothing set aside


@pytest.mark.slow
def test_scanned_run_trains_like_the_unrolled_one(runs):
  # the same seed gives the same parameters, so the same losses (to float error)
  losses = [[json.loads(line).get("train/loss") for line in
             open(runs / f"scan{scan}" / "metrics.jsonl") if "train/loss" in line]
            for scan in (False, True)]
  assert len(losses[0]) == 3
  np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
