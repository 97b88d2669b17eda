"""Phase-3 text data: files → documents → one token stream → fixed rows, and bits per byte.

Documents are read once, tokenised once into a flat stream (`<bos> doc <eos>` each, in a
seeded order) and cut into consecutive chunks of seq_len+1 tokens. Row i is chunk
perm_e[i % n_chunks] of epoch e = i // n_chunks, so like PackedTaskSource a row is a
pure function of (seed, i): the grain iterator position is the whole data state, and
every chunk is seen once per epoch. Rows have the layout of `pack_row`, so text rows,
task rows (replay) and the train step mix freely.
"""
from __future__ import annotations

import glob
import json
import math
import os
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np

from rf_jax.config import names
from rf_jax.data.corpus import python_docs
from rf_jax.errors import ConfigError
from rf_jax.vocab import Vocab

BUILTIN = "builtin:python_docs"
EXTENSIONS = (".txt", ".md", ".jsonl", ".json", ".parquet", ".arrayrecord", ".array_record")
_GLOB_CHARS = "*?["


# --- files and documents -------------------------------------------------------------------

def _glob_remote(pattern: str) -> list[str]:
  from etils import epath
  parts = pattern.split("/")
  first = next((i for i, p in enumerate(parts) if any(c in p for c in _GLOB_CHARS)), None)
  if first is None:
    path = epath.Path(pattern)
    return [pattern] if path.is_file() else []
  base = epath.Path("/".join(parts[:first]))
  return [os.fspath(p) for p in base.glob("/".join(parts[first:])) if p.is_file()]


def list_files(spec) -> list[str]:
  """The files of glob patterns (local or gs://; a tuple, or comma-separated), sorted and
  de-duplicated. `builtin:python_docs` stands for itself, so it can be mixed with files.
  """
  found = set()
  patterns = names(spec)
  spec = ",".join(patterns)  # as the user would type it, for the messages below
  for pattern in patterns:
    if pattern == BUILTIN:
      found.add(BUILTIN)
    elif "://" in pattern:
      try:
        found.update(_glob_remote(pattern))
      except Exception as e:  # auth, bucket, network: all fixable by the user
        raise ConfigError(f"data.text_files: cannot list {pattern!r} "
                          f"({_first_line(e)})") from None
    elif pattern:
      found.update(p for p in glob.glob(os.path.expanduser(pattern), recursive=True)
                   if os.path.isfile(p))
  if not found:
    raise ConfigError(f"data.text_files='{spec}' matches no files; give a glob of .txt, "
                      ".jsonl, .parquet or .arrayrecord files, or builtin:python_docs")
  return sorted(found)


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  return lines[0] if lines else type(e).__name__


def _fail(path: str, what: str) -> ConfigError:
  return ConfigError(f"cannot read {path}{what}")


def _field(path: str, where: str, obj, text_field: str) -> str:
  if not isinstance(obj, dict):
    raise _fail(path, f"{where}: not a JSON object (each record must be an object with a "
                f"'{text_field}' field)")
  if text_field not in obj:
    raise _fail(path, f"{where}: no '{text_field}' field (set data.text_field; fields "
                f"here: {', '.join(map(str, list(obj)[:8]))})")
  value = obj[text_field]
  if value is None:
    return ""
  if not isinstance(value, str):
    raise _fail(path, f"{where}: field '{text_field}' is a {type(value).__name__}, not text "
                "(set data.text_field to a text field)")
  return value


def _read_bytes(path: str) -> bytes:
  if "://" in path:
    from etils import epath
    return epath.Path(path).read_bytes()
  with open(path, "rb") as f:
    return f.read()


def _decode(path: str, where: str, data: bytes) -> str:
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise _fail(path, f"{where}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
                "convert the file to UTF-8") from None


def _read_jsonl(path: str, text_field: str) -> list[str]:
  docs = []
  for n, line in enumerate(_decode(path, "", _read_bytes(path)).splitlines(), 1):
    if not line.strip():
      continue
    try:
      obj = json.loads(line)
    except ValueError as e:
      raise _fail(path, f" line {n}: not valid JSON ({_first_line(e)}); each line must be "
                  f"one JSON object with a '{text_field}' field") from None
    docs.append(_field(path, f" line {n}", obj, text_field))
  return docs


def _read_parquet(path: str, text_field: str) -> list[str]:
  import io

  import pyarrow as pa
  import pyarrow.parquet as pq
  try:
    pf = pq.ParquetFile(io.BytesIO(_read_bytes(path)))
  except (pa.ArrowException, ValueError) as e:
    raise _fail(path, f": not a parquet file ({_first_line(e)})") from None
  names = pf.schema_arrow.names
  if text_field not in names:
    raise _fail(path, f": no '{text_field}' column (set data.text_field; columns: "
                f"{', '.join(names[:8])})")
  column = pf.read(columns=[text_field]).column(text_field)
  if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
    raise _fail(path, f": column '{text_field}' holds {column.type}, not text (set "
                "data.text_field to a string column)")
  return [d or "" for d in column.to_pylist()]


def _read_array_record(path: str, text_field: str) -> list[str]:
  from array_record.python.array_record_module import ArrayRecordReader
  try:
    reader = ArrayRecordReader(path)
    records = reader.read_all()
    reader.close()
  except Exception as e:  # the C++ reader raises plain RuntimeErrors/ValueErrors
    raise _fail(path, f": not an ArrayRecord file ({_first_line(e)})") from None
  docs = []
  for n, record in enumerate(records):
    text = _decode(path, f" record {n}", record)
    obj = None
    if text.lstrip().startswith("{"):
      try:
        obj = json.loads(text)
      except ValueError:
        pass  # plain text that happens to start with "{"
    docs.append(_field(path, f" record {n}", obj, text_field) if isinstance(obj, dict)
                else text)
  return docs


def read_documents(path: str, text_field: str = "text") -> list[str]:
  """The documents of one file, by extension; any failure is a one-line ConfigError."""
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext in (".txt", ".md"):
      return [_decode(path, "", _read_bytes(path))]
    if ext in (".jsonl", ".json"):
      return _read_jsonl(path, text_field)
    if ext == ".parquet":
      return _read_parquet(path, text_field)
    if ext in (".arrayrecord", ".array_record"):
      return _read_array_record(path, text_field)
  except ConfigError:
    raise
  except (OSError, MemoryError) as e:
    raise _fail(path, f": {_first_line(e)}") from None
  raise _fail(path, f": unknown file type '{ext}'; use one of {', '.join(EXTENSIONS)}")


def load_documents(spec, text_field: str = "text") -> list[str]:
  """All non-empty documents of `data.text_files` (files and/or the built-in corpus)."""
  docs, entries = [], list_files(spec)
  for entry in entries:
    if entry == BUILTIN:
      docs += python_docs()
    else:
      docs += read_documents(entry, text_field)
  docs = [d for d in docs if d.strip()]
  if not docs:
    raise ConfigError(f"data.text_files='{','.join(names(spec))}': the {len(entries)} file(s) "
                      f"hold no non-empty documents (is data.text_field='{text_field}' right?)")
  return docs


def split_documents(docs: list[str], validation_fraction: float,
                    seed: int) -> tuple[list[str], list[str]]:
  """(train, validation) by a stable hash of each text: same split on every machine and
  run, and duplicate documents land on the same side (no train/validation leak)."""
  if not 0 < validation_fraction < 1:
    raise ConfigError(f"data.validation_fraction={validation_fraction} must be in (0, 1)")
  if len(docs) < 2:
    raise ConfigError(f"the text has {len(docs)} document(s); a train/validation split needs "
                      "at least 2 (add documents to data.text_files)")
  salt = zlib.crc32(f"rf_jax-split-{seed}".encode())
  h = np.array([zlib.crc32(d.encode("utf-8"), salt) for d in docs], np.uint64)
  is_val = h < np.uint64(validation_fraction * 2 ** 32)
  if is_val.all() or not is_val.any():  # tiny corpora: force one document to each side
    is_val[:] = False
    is_val[int(np.argmin(h))] = True
  return ([d for d, v in zip(docs, is_val) if not v], [d for d, v in zip(docs, is_val) if v])


# --- rows ------------------------------------------------------------------------------------

def tokenize_documents(docs: list[str], vocab: Vocab) -> tuple[np.ndarray, np.ndarray, int]:
  """(token stream, start offset of each document in it, UTF-8 bytes) for <bos> doc <eos>."""
  raw = [d.encode("utf-8") for d in docs]
  n_bytes = sum(map(len, raw))
  if vocab.text == "bytes":
    # One vectorised pass instead of a Python int per byte: ~10 MB in well under a second.
    lens = np.fromiter(map(len, raw), np.int64, len(raw))
    body = np.frombuffer(b"".join(raw), np.uint8).astype(np.int32) + vocab.text_offset
  else:
    try:
      encoded = [vocab.encode(d) for d in docs]
    except ValueError as e:
      raise ConfigError(f"data.tokenizer='{vocab.text}': {_first_line(e)}") from None
    lens = np.fromiter(map(len, encoded), np.int64, len(encoded))
    body = np.fromiter((t for ids in encoded for t in ids), np.int32, int(lens.sum()))
  starts = np.concatenate([[0], np.cumsum(lens + 2)[:-1]]).astype(np.int64)
  stream = np.empty(int(lens.sum()) + 2 * len(lens), np.int32)
  special = np.zeros(len(stream), bool)
  special[starts] = special[starts + lens + 1] = True
  stream[starts], stream[starts + lens + 1] = vocab.bos_id, vocab.eos_id
  stream[~special] = body
  return stream, starts, n_bytes


class TextSource:
  """grain random-access source of text rows: `src[i]` is row i (infinite)."""

  def __init__(self, docs: list[str], vocab: Vocab, seq_len: int, seed: int):
    self._seq_len, self._seed = seq_len, seed
    order = np.random.default_rng([seed, 0x7E47]).permutation(len(docs))
    self._stream, self._starts, self.n_bytes = tokenize_documents([docs[i] for i in order],
                                                                   vocab)
    self.n_docs, self.n_tokens = len(docs), len(self._stream)
    self.n_chunks = self.n_tokens // (seq_len + 1)  # the tail shorter than a row is dropped
    if self.n_chunks == 0:
      raise ConfigError(f"the text has {self.n_tokens} tokens, fewer than data.seq_len+1="
                        f"{seq_len + 1}; add documents or lower data.seq_len")
    self._perm = (-1, None)  # (epoch, permutation): rows are read mostly in epoch order

  def __len__(self) -> int:
    return sys.maxsize

  def _permutation(self, epoch: int) -> np.ndarray:
    cached_epoch, perm = self._perm
    if cached_epoch != epoch:
      perm = np.random.default_rng([self._seed, epoch, 0x7E47]).permutation(self.n_chunks)
      self._perm = (epoch, perm)  # one tuple assignment: safe under grain's reader threads
    return perm

  def chunk(self, c: int) -> dict:
    """Chunk c (in stream order) as a row in the layout of `pack_row`."""
    n = self._seq_len + 1
    lo = c * n
    tokens = self._stream[lo:lo + n]
    # Document starts inside the chunk open new segments; the chunk's first token opens
    # one too (it may continue a document cut by the previous chunk).
    first = np.searchsorted(self._starts, lo, side="right")
    last = np.searchsorted(self._starts, lo + n, side="left")
    is_start = np.zeros(n, bool)
    is_start[0] = True
    is_start[self._starts[first:last] - lo] = True
    seg = np.cumsum(is_start).astype(np.int32)
    seg_start = np.flatnonzero(is_start)
    pos = (np.arange(n) - seg_start[seg - 1]).astype(np.int32)
    T = self._seq_len
    return {
        "inputs": tokens[:-1].copy(),
        "targets": tokens[1:].copy(),
        "positions": pos[:-1],
        "segment_ids": seg[:-1],
        "loss_mask": (seg[1:] == seg[:-1]).astype(np.float32),
        "task_ids": np.full(T, -1, np.int32),
        "levels": np.zeros(T, np.int32),
    }

  def __getitem__(self, index: int) -> dict:
    epoch, k = divmod(int(index), self.n_chunks)
    return self.chunk(int(self._permutation(epoch)[k]))

  def rows(self, n: int) -> dict:
    """The first min(n, n_chunks) chunks in stream order, stacked: fixed validation rows."""
    rows = [self.chunk(c) for c in range(min(n, self.n_chunks))]
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}

  def __repr__(self) -> str:  # grain logs sources by repr
    return (f"TextSource(docs={self.n_docs}, tokens={self.n_tokens}, chunks={self.n_chunks}, "
            f"seq_len={self._seq_len})")


class ReplaySource:
  """Text rows with a `fraction` of task rows mixed back in (against forgetting phase 1).

  Task rows are spaced evenly (one every 1/fraction rows, from a seeded offset), so the
  number of them before any row is known in O(1), and text row k is the k-th text chunk:
  an epoch of text is read whole, none of it skipped for the task rows.
  """

  def __init__(self, text_source, task_source, fraction: float, seed: int):
    if not 0 <= fraction < 1:
      raise ConfigError(f"data.replay_fraction={fraction} must be in [0, 1): the share of "
                        "rows drawn from the phase-1 tasks")
    self._text, self._tasks, self._fraction = text_source, task_source, float(fraction)
    self._offset = float(np.random.default_rng([seed, 7]).random())

  def __len__(self) -> int:
    return sys.maxsize

  def tasks_before(self, index: int) -> int:
    """How many of rows 0 .. index-1 are task rows."""
    return math.floor(index * self._fraction + self._offset)

  def is_task_row(self, index: int) -> bool:
    return self.tasks_before(index + 1) > self.tasks_before(index)

  def __getitem__(self, index: int) -> dict:
    if self.is_task_row(index):
      return self._tasks[index]
    return self._text[index - self.tasks_before(index)]

  def __repr__(self) -> str:
    return f"ReplaySource({self._text!r}, {self._tasks!r}, fraction={self._fraction})"


# --- evaluation ------------------------------------------------------------------------------

def _pairwise_sum(x):
  """Sum of the last axis by halving: float32 error grows with log(n), not n.

  A plain float32 sum of ~1e4 similar NLLs drifts by ~1e-5 relative (XLA on CPU adds
  sequentially); metrics compared across meshes and runs should not.
  """
  n = x.shape[-1]
  x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, (1 << max(n - 1, 0).bit_length()) - n)])
  while x.shape[-1] > 1:
    x = x[..., 0::2] + x[..., 1::2]
  return x[..., 0]


def _total(x_BT):
  return _pairwise_sum(_pairwise_sum(x_BT))  # rows first: stays local to each batch shard


def bits_per_byte_terms(logits, batch, byte_lengths):
  """(sum of NLL in nats, sum of UTF-8 bytes, count) over the masked targets; jittable.

  Sums, not means, so batches and processes combine exactly; an <eos> target counts as one
  byte (Vocab.byte_lengths), the document separator of the byte stream.
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  targets, mask = batch["targets"], batch["loss_mask"].astype(jnp.float32)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  n_bytes = jnp.asarray(byte_lengths, jnp.float32)[targets]
  return _total(nll * mask), _total(n_bytes * mask), _total(mask)


def text_metrics(sum_nll: float, sum_bytes: float, n_tokens: float) -> dict[str, float]:
  loss = float(sum_nll) / max(float(n_tokens), 1.0)
  return {"val/loss": loss, "val/perplexity": math.exp(loss),
          "val/bits_per_byte": float(sum_nll) / math.log(2) / max(float(sum_bytes), 1.0)}
