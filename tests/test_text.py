"""Phase-3 text data: readers, split, text rows, replay, bits per byte, built-in corpus."""
import json
import math

import jax
import numpy as np
import pytest

from rf_jax.curriculum import Curriculum
from rf_jax.data import corpus, text
from rf_jax.data.pipeline import make_iterator
from rf_jax.data.tasks import PackedTaskSource, TaskMixture
from rf_jax.errors import ConfigError
from rf_jax.probes.bits_per_byte import TextEvaluator
from rf_jax.train_state import (abstract_model, init_state, make_optimizer, make_schedule,
                                mesh_rules, model_config)
from rf_jax.vocab import phase1_vocab, text_vocab

from helpers import load_config, mesh_of

V = text_vocab("bytes")
DOCS = [f"Document {i}: the quick brown fox jumps over {i} lazy dogs. " * (1 + i % 5) +
        ("Café crème ☕ " if i % 3 == 0 else "") for i in range(30)]


def write_corpus(d, docs, fmt):
  """`docs` in format `fmt` under directory d; returns the glob that finds them."""
  d.mkdir(exist_ok=True)
  if fmt == "txt":
    for i, doc in enumerate(docs):
      (d / f"doc{i:03d}.txt").write_text(doc, encoding="utf-8")
    return str(d / "*.txt")
  if fmt == "jsonl":
    half = len(docs) // 2
    for name, part in (("a", docs[:half]), ("b", docs[half:])):
      (d / f"{name}.jsonl").write_text("".join(json.dumps({"id": 1, "text": x}) + "\n"
                                               for x in part), encoding="utf-8")
    return str(d / "*.jsonl")
  if fmt == "parquet":
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": docs, "n": list(range(len(docs)))}), str(d / "x.parquet"))
    return str(d / "*.parquet")
  if fmt == "arrayrecord":
    from array_record.python.array_record_module import ArrayRecordWriter
    w = ArrayRecordWriter(str(d / "x.arrayrecord"), "group_size:1")
    for i, doc in enumerate(docs):  # both record kinds: plain text and JSON objects
      w.write(doc.encode() if i % 2 else json.dumps({"text": doc}).encode())
    w.close()
    return str(d / "*.arrayrecord")
  raise ValueError(fmt)


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "parquet", "arrayrecord"])
def test_every_format_reads_back_the_documents(tmp_path, fmt):
  pattern = write_corpus(tmp_path / fmt, DOCS, fmt)
  assert text.load_documents(pattern) == DOCS
  files = text.list_files(pattern)
  assert files == sorted(files) and len(files) == len(set(files))


def test_list_files_dedups_and_mixes_the_builtin_corpus(tmp_path):
  pattern = write_corpus(tmp_path, DOCS[:3], "txt")
  assert len(text.list_files(f"{pattern},{tmp_path}/doc000.txt, {tmp_path}/**/*.txt")) == 3
  assert text.BUILTIN in text.list_files(f"{text.BUILTIN},{pattern}")
  # Remote globs go through etils; its refusals become one-line config errors.
  assert "cannot list" in one_line_error(text.list_files, "gs://rf-jax-none/**/*.txt")


def one_line_error(fn, *args):
  with pytest.raises(ConfigError) as e:
    fn(*args)
  msg = str(e.value)
  assert "\n" not in msg and msg, msg
  return msg


def test_bad_inputs_are_one_line_errors(tmp_path):
  msg = one_line_error(text.list_files, str(tmp_path / "nothing*.jsonl"))
  assert msg.startswith(f"data.text_files='{tmp_path}/nothing*.jsonl' matches no files")
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"text": "ok"}\n\n{"text": "ok", oops\n')
  assert "bad.jsonl line 3: not valid JSON" in one_line_error(text.read_documents, str(bad))
  bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
  assert one_line_error(text.read_documents, str(bad)).startswith(
      f"cannot read {bad} line 2: no 'text' field (set data.text_field")
  bad.write_text('{"body": null}\n{"body": "no text"}\n')
  assert text.read_documents(str(bad), "body") == ["", "no text"]  # null reads as empty
  bad.write_text('{"text": 3}\n')
  assert "not text" in one_line_error(text.read_documents, str(bad))
  csv = tmp_path / "x.csv"
  csv.write_text("a,b\n")
  assert "unknown file type '.csv'" in one_line_error(text.read_documents, str(csv))
  latin = tmp_path / "latin.txt"
  latin.write_bytes("caf\xe9".encode("latin-1"))
  assert "not UTF-8" in one_line_error(text.read_documents, str(latin))
  fake = tmp_path / "fake.parquet"
  fake.write_bytes(b"not parquet at all")
  assert "not a parquet file" in one_line_error(text.read_documents, str(fake))
  write_corpus(tmp_path / "pq", DOCS[:2], "parquet")
  assert "no 'body' column" in one_line_error(text.read_documents,
                                               str(tmp_path / "pq" / "x.parquet"), "body")
  fake = tmp_path / "fake.arrayrecord"
  fake.write_bytes(b"\x00" * 64)
  assert "not an ArrayRecord file" in one_line_error(text.read_documents, str(fake))
  assert "No such file" in one_line_error(text.read_documents, str(tmp_path / "gone.txt"))
  (tmp_path / "empty.txt").write_text("  \n")
  assert "no non-empty documents" in one_line_error(text.load_documents,
                                                    str(tmp_path / "empty.txt"))


def test_split_is_deterministic_disjoint_and_never_empty():
  docs = [f"doc {i}" for i in range(200)]
  train_docs, val = text.split_documents(docs, 0.1, seed=0)
  assert (train_docs, val) == text.split_documents(docs, 0.1, seed=0)
  assert set(train_docs).isdisjoint(val) and sorted(train_docs + val) == sorted(docs)
  assert 5 <= len(val) <= 40
  assert text.split_documents(docs, 0.1, seed=1) != (train_docs, val)
  for n in (2, 3):
    t, v = text.split_documents(docs[:n], 0.01, 0)
    assert len(t) >= 1 and len(v) >= 1 and len(t) + len(v) == n
  one_line_error(text.split_documents, docs[:1], 0.1, 0)
  assert "data.validation_fraction" in one_line_error(text.split_documents, docs, 1.0, 0)


def test_text_rows_are_deterministic_full_and_cover_each_chunk_once_per_epoch():
  src = text.TextSource(DOCS, V, 32, seed=0)
  assert src.n_bytes == sum(len(d.encode()) for d in DOCS)
  assert src.n_tokens == src.n_bytes + 2 * len(DOCS) and src.n_chunks == src.n_tokens // 33
  assert "chunks=" in repr(src)
  again = text.TextSource(DOCS, V, 32, seed=0)
  for i in (0, 5, 10_000):
    for k, a in src[i].items():
      np.testing.assert_array_equal(a, again[i][k])
      assert a.shape == (32,) and a.dtype == (np.float32 if k == "loss_mask" else np.int32)
  assert not np.array_equal(text.TextSource(DOCS, V, 32, seed=1)[0]["inputs"], src[0]["inputs"])
  key = lambda r: r["inputs"].tobytes() + r["targets"][-1:].tobytes()
  chunks = sorted(key(src.chunk(c)) for c in range(src.n_chunks))
  for epoch in (0, 3):
    rows = range(epoch * src.n_chunks, (epoch + 1) * src.n_chunks)
    assert sorted(key(src[i]) for i in rows) == chunks
  order = [key(src[i]) for i in range(src.n_chunks)]
  assert order != [key(src[i]) for i in range(src.n_chunks, 2 * src.n_chunks)]  # reshuffled
  val = src.rows(5)
  assert val["inputs"].shape == (5, 32)
  np.testing.assert_array_equal(val["targets"][3], src.chunk(3)["targets"])
  assert src.rows(10 ** 6)["inputs"].shape[0] == src.n_chunks
  batch = next(make_iterator(src, batch_size=4, process_index=0, process_count=1))
  np.testing.assert_array_equal(batch["targets"][3], src[3]["targets"])


def test_rows_hold_corpus_text_and_mask_only_document_boundaries():
  src = text.TextSource(DOCS, V, 48, seed=3)
  joined = "\x00".join(DOCS)
  boundaries = 0
  for i in range(src.n_chunks):
    r = src[i]
    # The only masked targets are the <bos> of the next document.
    np.testing.assert_array_equal(r["loss_mask"] == 0, r["targets"] == V.bos_id)
    np.testing.assert_array_equal(r["task_ids"], -1)
    boundaries += int((r["loss_mask"] == 0).sum())
    seg = r["segment_ids"]
    assert seg[0] == 1 and np.all(np.diff(seg) >= 0) and np.all(np.diff(seg) <= 1)
    for s in np.unique(seg):
      at = np.flatnonzero(seg == s)
      np.testing.assert_array_equal(r["positions"][at], np.arange(len(at)))
      piece = V.decode(r["inputs"][at], stop_at_eos=False).strip("\ufffd")  # cut UTF-8
      assert piece in joined, piece
  assert boundaries > 0


def test_other_tokenizers_make_the_same_layout():
  v = phase1_vocab()
  docs = ["copy ab", "add 12+3=15", "dyck (())"]
  src = text.TextSource(docs, v, 8, seed=0)
  assert src.n_tokens == sum(len(d) + 2 for d in docs)
  for c in range(src.n_chunks):
    r = src.chunk(c)
    assert v.decode(r["inputs"], stop_at_eos=False)  # symbols, not bytes
    np.testing.assert_array_equal(r["loss_mask"] == 0, r["targets"] == v.bos_id)
  assert "not in the vocabulary" in one_line_error(text.TextSource, ["é"], v, 8, 0)
  assert "data.seq_len" in one_line_error(text.TextSource, ["ab"], V, 8, 0)


class Exploding:
  def __getitem__(self, i):
    raise AssertionError("fraction 0 must never read task rows")


def test_replay_mixes_in_task_rows():
  tasks = ("copy", "add")
  task_src = PackedTaskSource(TaskMixture.build(tasks, None, (1, 2)), Curriculum(tasks, 1, 2),
                              V, 64, 0, False, batch_size=4)
  text_src = text.TextSource(DOCS, V, 64, seed=0)
  mixed = text.ReplaySource(text_src, task_src, 0.5, seed=0)
  from_tasks = [bool((mixed[i]["task_ids"] >= 0).any()) for i in range(300)]
  assert 0.4 < np.mean(from_tasks) < 0.6
  # The text rows, in order, are the text source's rows 0, 1, 2, ...: an epoch of text is
  # read whole (no chunk skipped because its row index went to a task row).
  text_rows = [i for i in range(300) if not from_tasks[i]]
  for k, i in enumerate(text_rows):
    np.testing.assert_array_equal(mixed[i]["inputs"], text_src[k]["inputs"])
  epoch = {tuple(mixed[i]["inputs"]) for i in text_rows[:text_src.n_chunks]}
  assert epoch == {tuple(text_src.chunk(c)["inputs"]) for c in range(text_src.n_chunks)}
  task_rows = [i for i in range(300) if from_tasks[i]]
  np.testing.assert_array_equal(mixed[task_rows[0]]["inputs"], task_src[task_rows[0]]["inputs"])
  plain = text.ReplaySource(text_src, Exploding(), 0.0, seed=0)
  np.testing.assert_array_equal(plain[7]["inputs"], text_src[7]["inputs"])
  for bad in (1.0, -0.1):
    assert "data.replay_fraction" in one_line_error(text.ReplaySource, text_src, task_src, bad, 0)


def test_uniform_logits_cost_log2_vocab_bits_per_byte():
  rows = text.TextSource(DOCS, V, 32, seed=0).rows(40)
  logits = np.zeros(rows["targets"].shape + (V.size,), np.float32)
  table = np.asarray(V.byte_lengths)
  byte_rows = dict(rows, loss_mask=rows["loss_mask"] * (table[rows["targets"]] > 0))
  m = text.text_metrics(*jax.jit(text.bits_per_byte_terms)(logits, byte_rows, table))
  assert abs(m["val/bits_per_byte"] - math.log2(V.size)) < 1e-5
  assert abs(m["val/loss"] - math.log(V.size)) < 1e-5
  assert abs(m["val/perplexity"] - V.size) < 1e-2
  # Every target of a byte vocabulary is one byte, <eos> (the document separator) included:
  # its loss is not charged to zero bytes.
  assert (rows["targets"] == V.eos_id).any()
  nll, n_bytes, n = text.bits_per_byte_terms(logits, rows, table)
  assert (rows["loss_mask"][rows["targets"] == V.eos_id] > 0).any()
  assert int(n) == int(rows["loss_mask"].sum()) == int(n_bytes) > 0
  assert abs(float(nll) - float(n) * math.log(V.size)) < 1e-3
  m = text.text_metrics(nll, n_bytes, n)
  assert abs(m["val/bits_per_byte"] - math.log2(V.size)) < 1e-5


def test_evaluator_gives_the_same_numbers_on_any_mesh():
  config = load_config("phase1", "tiny")
  mcfg = model_config(config, V)
  rules = mesh_rules(config)
  tx = make_optimizer(make_schedule(1e-3, 1, 10), 0.0, 0.9, 0.98, 1.0)
  rows = text.TextSource(DOCS, V, config.data.seq_len, seed=0).rows(10)
  results, params = [], None
  for shape, batch_size in (((8, 1, 1), 8), ((1, 1, 1), 4)):
    mesh = mesh_of(shape)
    graphdef, abs_params = abstract_model(mcfg, mesh, rules)
    if params is None:
      params = init_state(mcfg, tx, mesh, rules, 0)["params"]
    else:  # the same weights, resharded onto the one-device mesh
      params = jax.tree.map(lambda a, s: jax.device_put(a, s.sharding), params, abs_params)
    evaluator = TextEvaluator(rows, graphdef, mesh, V.byte_lengths, batch_size)
    results.append(evaluator(params))
  a, b = results
  assert set(a) == {"val/loss", "val/perplexity", "val/bits_per_byte"}
  for k in a:
    assert abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(a[k])), (k, a[k], b[k])
  assert 0.9 * math.log(V.size) < a["val/loss"] < 1.1 * math.log(V.size)  # untrained: ~uniform


@pytest.mark.slow
def test_evaluator_scores_the_distribution_training_optimises():
  from rf_jax.step import loss_fn
  config = load_config("phase1", "tiny")
  mcfg = model_config(config, V)
  rules = mesh_rules(config)
  mesh = mesh_of((1, 1, 1))
  graphdef, _ = abstract_model(mcfg, mesh, rules)
  tx = make_optimizer(make_schedule(1e-3, 1, 10), 0.0, 0.9, 0.98, 1.0)
  params = init_state(mcfg, tx, mesh, rules, 0)["params"]
  rows = text.TextSource(DOCS, V, config.data.seq_len, seed=0).rows(4)
  masked = TextEvaluator(rows, graphdef, mesh, V.byte_lengths, 4, V.allowed())(params)
  plain = TextEvaluator(rows, graphdef, mesh, V.byte_lengths, 4)(params)
  with jax.set_mesh(mesh):
    train_loss = float(loss_fn(params, graphdef, rows, allowed=V.allowed())[0])
  assert abs(masked["val/loss"] - train_loss) < 1e-5
  assert masked["val/loss"] < plain["val/loss"]  # no mass on ids the phase never outputs


def test_builtin_corpus_is_large_and_deterministic():
  docs = corpus.python_docs()
  assert sum(len(d.encode()) for d in docs) > 1_000_000 and len(docs) > 100
  assert docs == corpus.build() == text.load_documents("builtin:python_docs")
  line = corpus.describe()
  assert "\n" not in line and f"{len(docs)} documents" in line
