import numpy as np
import pytest

from rf_jax.data.packing import encode_example, pack_row
from rf_jax.data.pipeline import make_iterator
from rf_jax.curriculum import Curriculum
from rf_jax.data.tasks import PackedTaskSource, TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.tasks import Example
from rf_jax.vocab import phase1_vocab

V = phase1_vocab()


def source(seq_len=64, seed=0, tasks=("copy", "add", "parity"), levels=(1, 2)):
  return PackedTaskSource(TaskMixture.build(tasks, None, levels), Curriculum(tasks, *levels), V,
                          seq_len, seed, False, batch_size=4)


def test_pack_row_masks_only_outputs_of_each_segment():
  a = encode_example(V, Example("copy:ab", "ab"), False)
  b = encode_example(V, Example("par:01", "1", "01"), use_trace=True)
  row = pack_row([a, b], 32, V.pad_id)
  toks = np.concatenate([row["inputs"][:1], row["targets"]])
  la, lb = len(a[0]), len(b[0])
  assert V.decode(toks[:la]) == "copy:abab"
  assert list(row["segment_ids"][:la]) == [1] * la
  assert list(row["segment_ids"][la:la + lb]) == [2] * lb
  assert (row["segment_ids"][la + lb:] == 0).all()
  assert row["positions"][la] == 0 and row["positions"][la - 1] == la - 1
  targets_in_loss = row["targets"][row["loss_mask"] > 0]
  # copy: "ab<eos>"; parity with trace: "01<ans>1<eos>"
  assert V.decode(targets_in_loss, stop_at_eos=False) == "ab" + "011"
  assert int((targets_in_loss == V.eos_id).sum()) == 2
  # the BOS of segment 2 is never a target of segment 1's last token
  assert row["loss_mask"][la - 1] == 0


def test_rows_are_deterministic_and_full():
  s1, s2 = source(), source()
  for i in (0, 7, 12345):
    r1, r2 = s1[i], s2[i]
    for k in r1:
      np.testing.assert_array_equal(r1[k], r2[k])
  assert not np.array_equal(s1[0]["inputs"], s1[1]["inputs"])
  assert not np.array_equal(source(seed=1)[0]["inputs"], s1[0]["inputs"])
  fill = np.mean([(s1[i]["segment_ids"] > 0).mean() for i in range(50)])
  assert fill > 0.8, fill


def test_iterator_resume_neither_replays_nor_skips():
  src = source()
  it = make_iterator(src, batch_size=4, process_index=0, process_count=1)
  for _ in range(3):
    next(it)
  saved = it.get_state()
  expected = [next(it)["inputs"] for _ in range(3)]
  fresh = make_iterator(src, batch_size=4, process_index=0, process_count=1)
  fresh.set_state(saved)
  for e in expected:
    np.testing.assert_array_equal(next(fresh)["inputs"], e)


def test_processes_read_disjoint_rows_that_make_the_global_batch():
  src = source()
  whole = next(make_iterator(src, 4, 0, 1))["inputs"]
  p0 = next(make_iterator(src, 4, 0, 2))["inputs"]
  p1 = next(make_iterator(src, 4, 1, 2))["inputs"]
  np.testing.assert_array_equal(np.sort(np.concatenate([p0, p1]), axis=0), np.sort(whole, axis=0))
  np.testing.assert_array_equal(p0[0], src[0]["inputs"])
  np.testing.assert_array_equal(p1[0], src[1]["inputs"])


def test_bad_mixture_inputs():
  with pytest.raises(ConfigError, match="unknown task 'nope'"):
    TaskMixture.build(["copy", "nope"], None, (1, 1))
  with pytest.raises(ConfigError, match="data.weights"):
    TaskMixture.build(["copy"], [1, 2], (1, 1))
  with pytest.raises(ConfigError, match="levels 1..4"):
    TaskMixture.build(["copy"], None, (1, 9))
  with pytest.raises(ConfigError, match="raise data.seq_len"):
    source(seq_len=8)[0]


def test_start_step_positions_any_process_count_at_the_same_rows():
  src = source()
  it = make_iterator(src, 4, 0, 1)
  batches = [next(it)["inputs"] for _ in range(4)]
  np.testing.assert_array_equal(next(make_iterator(src, 4, 0, 1, start_step=3))["inputs"], batches[3])
  halves = [next(make_iterator(src, 4, p, 2, start_step=3))["inputs"] for p in (0, 1)]
  np.testing.assert_array_equal(np.sort(np.concatenate(halves), axis=0), np.sort(batches[3], axis=0))
