"""Memory bank: exact sharded top-k, save / reload / shard, one-line errors; the windowed sampler."""
import functools
import json
import os

import jax
import numpy as np
import pytest
from flax import nnx

from rf_jax import memory
from rf_jax.errors import ConfigError
from rf_jax.model import ModelConfig, Transformer
from rf_jax.sampling import decode_recompute, left_pad, sample
from tests.helpers import mesh_of


def test_window_sampler_prefills_in_chunks_and_equals_recomputation():
  cfg = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, mlp_dim=64,
                    attention_window=4)
  with nnx.use_eager_sharding(False):
    graphdef, params = nnx.split(Transformer(cfg, nnx.Rngs(3)), nnx.Param)
  params = nnx.to_pure_dict(params)
  rng = np.random.default_rng(0)
  tokens, mask = left_pad([list(rng.integers(3, 50, n)) for n in (11, 3, 14)], 14, 0)
  cached = jax.jit(functools.partial(sample, graphdef=graphdef, max_new=10, valid_vocab=60,
                                     eos_id=2))(params, tokens, mask, jax.random.key(0))
  full = jax.jit(functools.partial(decode_recompute, graphdef=graphdef, max_new=10,
                                   valid_vocab=60))(params, tokens, mask)
  np.testing.assert_array_equal(cached, full)


def numpy_top_k(keys, queries, k):
  scores = queries @ keys.T
  idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
  order = np.argsort(-np.take_along_axis(scores, idx, 1), axis=1, kind="stable")
  return np.take_along_axis(idx, order, 1)


@pytest.mark.parametrize("n,k,shape", [(1003, 7, (8, 1, 1)), (20, 5, (2, 2, 2)), (9, 9, (1, 1, 1))])
def test_top_k_equals_numpy(n, k, shape):
  rng = np.random.default_rng(n)
  keys = rng.standard_normal((n, 16)).astype(np.float32)
  queries = rng.standard_normal((6, 16)).astype(np.float32)
  sharded = memory.shard_rows(keys, mesh_of(shape))
  scores, idx = memory.top_k(sharded, queries, k, n)
  np.testing.assert_array_equal(np.asarray(idx), numpy_top_k(keys, queries, k))
  np.testing.assert_allclose(scores, np.sort(queries @ keys.T, 1)[:, ::-1][:, :k], rtol=1e-5)


@pytest.mark.slow
def test_top_k_one_million_entries_of_dim_128():
  rng = np.random.default_rng(0)
  keys = rng.standard_normal((1_000_000, 128), np.float32)
  queries = rng.standard_normal((64, 128), np.float32)
  sharded = memory.shard_rows(keys, mesh_of((8, 1, 1)))
  rows = sharded.addressable_shards[0].data.shape[0]
  assert 125_000 <= rows < 126_024 and rows % memory.BLOCK == 0  # the two-stage search path
  _, idx = memory.top_k(sharded, queries, 10)
  np.testing.assert_array_equal(np.asarray(idx), numpy_top_k(keys, queries, 10))


def test_two_stage_search_is_exact_and_never_returns_padding():
  # 16 blocks per device or more takes the two-stage path; all real scores are negative, so
  # the zero rows that pad the bank would win if they were not masked
  n = 16 * 8 * memory.BLOCK + 5
  rng = np.random.default_rng(3)
  keys = -np.abs(rng.standard_normal((n, 8))).astype(np.float32)
  queries = np.abs(rng.standard_normal((5, 8))).astype(np.float32)
  sharded = memory.shard_rows(keys, mesh_of((8, 1, 1)))
  assert sharded.shape[0] % (8 * memory.BLOCK) == 0 and sharded.shape[0] - n > memory.BLOCK
  scores, idx = memory.top_k(sharded, queries, 12, n)
  np.testing.assert_array_equal(np.asarray(idx), numpy_top_k(keys, queries, 12))
  assert (np.asarray(scores) < 0).all()


def make_bank(tmp_path, n=50, dim=8, name="bank"):
  rng = np.random.default_rng(1)
  keys = rng.standard_normal((n, dim)).astype(np.float32)
  chunks = rng.integers(0, 90, (n, 7)).astype(np.int32)
  path = str(tmp_path / name)
  manifest = memory.save(path, keys, chunks, source="test")
  return path, keys, chunks, manifest


def test_bank_saves_reloads_and_shards_over_8_devices(tmp_path):
  path, keys, chunks, manifest = make_bank(tmp_path)
  assert manifest["count"] == 50 and manifest["dim"] == 8 and manifest["source"] == "test"
  assert sorted(os.listdir(tmp_path)) == ["bank"]  # no temporary folder left behind
  bank = memory.load(path, mesh_of((2, 2, 2)), dim=8)
  assert len(bank.keys.sharding.device_set) == 8
  assert bank.keys.addressable_shards[0].data.shape == (7, 8)  # 50 rows padded to 56
  np.testing.assert_array_equal(np.asarray(bank.keys)[:50], keys)
  np.testing.assert_array_equal(bank.chunks, chunks)
  queries = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
  _, idx = bank.search(queries, 3)
  np.testing.assert_array_equal(np.asarray(idx), numpy_top_k(keys, queries, 3))
  np.testing.assert_array_equal(bank.lookup(idx)[0, 0], chunks[numpy_top_k(keys, queries, 3)[0, 0]])
  # saving again over the bank replaces it whole
  memory.save(path, keys[:10] * 2, chunks[:10])
  again = memory.load(path, mesh_of((8, 1, 1)))
  assert again.size == 10
  np.testing.assert_array_equal(np.asarray(again.keys)[:10], keys[:10] * 2)


def one_line(excinfo) -> str:
  msg = str(excinfo.value)
  assert "\n" not in msg
  return msg


def test_bank_errors_are_one_line(tmp_path):
  mesh = mesh_of((8, 1, 1))
  with pytest.raises(ConfigError) as e:
    memory.load(str(tmp_path / "nowhere"), mesh)
  assert "no memory bank at" in one_line(e)
  path, *_ = make_bank(tmp_path)
  with pytest.raises(ConfigError) as e:
    memory.load(path, mesh, dim=16)
  assert "dim 8" in one_line(e) and "dim 16" in one_line(e)
  bank = memory.load(path, mesh)
  with pytest.raises(ConfigError) as e:
    bank.search(np.zeros((2, 5), np.float32), 3)
  assert "dim 5" in one_line(e)
  with pytest.raises(ConfigError) as e:
    bank.search(np.zeros((2, 8), np.float32), 51)
  assert "k=51" in one_line(e)
  os.remove(os.path.join(path, "chunks.npy"))
  with pytest.raises(ConfigError) as e:
    memory.load(path, mesh)
  assert "incomplete" in one_line(e) and "chunks.npy" in one_line(e)
  path, *_ = make_bank(tmp_path, name="bad_manifest")
  with open(os.path.join(path, "manifest.json"), "w") as f:
    json.dump({"count": 3, "dim": 8, "chunk_len": 7}, f)
  with pytest.raises(ConfigError) as e:
    memory.load(path, mesh)
  assert "corrupt" in one_line(e)
  path, *_ = make_bank(tmp_path, name="truncated")
  with open(os.path.join(path, "keys.npy"), "r+b") as f:
    f.truncate(100)
  with pytest.raises(ConfigError) as e:
    memory.load(path, mesh)
  assert "corrupt" in one_line(e)
