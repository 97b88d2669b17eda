"""Prefix-stable vocabulary: specials | phase-1 symbols | (later phases) text tokens.

Phase 1 tokenises one symbol per character (`text="chars"`). Later phases append text
tokens and tokenise every string with them: 256 byte tokens (`text="bytes"`, the default)
or the pieces of a sentencepiece BPE model trained on the corpus (`text="sentencepiece"`,
the model travels inside the vocabulary, hence inside checkpoint metadata). Ids never
move once assigned: a vocabulary may only grow at the end, which `is_prefix_of` checks.
Symbol rows stay in the embedding table and seed the text tokens that spell them
(rf_jax/handoff.py).
"""
from __future__ import annotations

import base64
import dataclasses
import functools
import io
import string
from typing import Iterable

import numpy as np

from rf_jax.errors import ConfigError

PAD, BOS, EOS, SEP, ANS, UNK = "<pad>", "<bos>", "<eos>", "<sep>", "<ans>", "<unk>"
SPECIALS = (PAD, BOS, EOS, SEP, ANS, UNK)
# SEP ends the prompt; ANS ends an optional step-by-step trace and starts the answer.

OPERATORS = "+-*/%=<>()[]{},.:;|&^!?#@_~$' \n"
SYMBOLS = tuple(string.digits + string.ascii_lowercase + string.ascii_uppercase + OPERATORS)
TEXT_KINDS = ("chars", "bytes", "sentencepiece")
BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))
SP_PREFIX = "sp:"  # piece names are prefixed so a piece "a" does not collide with symbol "a"


@dataclasses.dataclass(frozen=True)
class Vocab:
  tokens: tuple[str, ...]
  text: str = "chars"      # how strings become ids: one of TEXT_KINDS
  sp_model: bytes = b""    # serialized sentencepiece model when text == "sentencepiece"

  def __post_init__(self):
    if len(set(self.tokens)) != len(self.tokens):
      raise ValueError("vocabulary has duplicate tokens")
    if self.text not in TEXT_KINDS:
      raise ValueError(f"vocabulary text kind must be one of {TEXT_KINDS}, got {self.text!r}")
    ids = {t: i for i, t in enumerate(self.tokens)}
    object.__setattr__(self, "_ids", ids)
    offset = -1  # id of the first text token; none in a phase-1 vocabulary
    if self.text == "bytes":
      offset = ids.get(BYTE_TOKENS[0], -1)
    elif self.text == "sentencepiece":
      offset = next((i for i, t in enumerate(self.tokens) if t.startswith(SP_PREFIX)), -1)
    object.__setattr__(self, "_offset", offset)

  @property
  def size(self) -> int:
    return len(self.tokens)

  def id(self, token: str) -> int:
    return self._ids[token]

  pad_id = property(lambda self: self._ids[PAD])
  bos_id = property(lambda self: self._ids[BOS])
  eos_id = property(lambda self: self._ids[EOS])
  sep_id = property(lambda self: self._ids[SEP])
  ans_id = property(lambda self: self._ids[ANS])

  @property
  def text_offset(self) -> int:
    """Id of the first text token (-1 for a phase-1 vocabulary)."""
    return self._offset

  @functools.cached_property
  def _sp(self):
    import sentencepiece as spm  # optional dependency: only sentencepiece vocabularies need it
    return spm.SentencePieceProcessor(model_proto=self.sp_model)

  def encode(self, text: str) -> list[int]:
    if self.text == "bytes":
      return [self._offset + b for b in text.encode("utf-8")]
    if self.text == "sentencepiece":
      return [self._offset + i for i in self._sp.encode(text)]
    try:
      return [self._ids[c] for c in text]
    except KeyError as e:
      raise ConfigError(
          f"character {e.args[0]!r} is not in the vocabulary; tasks may only use "
          f"rf_jax.vocab.SYMBOLS (or train with data.tokenizer='bytes')") from None

  def decode(self, ids: Iterable, stop_at_eos: bool = True) -> str:
    out, run = [], []  # run: consecutive text ids, decoded together (bytes span tokens)

    def flush():
      if run:
        out.append(self._decode_text(run))
        run.clear()

    for i in ids:
      i = int(i)
      if stop_at_eos and i == self.eos_id:
        break
      if not 0 <= i < self.size:
        continue
      if self._offset >= 0 and i >= self._offset:
        run.append(i - self._offset)
      else:
        flush()
        if self.tokens[i] not in SPECIALS:
          out.append(self.tokens[i])
    flush()
    return "".join(out)

  def _decode_text(self, ids: list[int]) -> str:
    if self.text == "bytes":
      return bytes(ids).decode("utf-8", errors="replace")
    return self._sp.decode(ids)

  def spelling(self, i: int) -> str:
    """The text a token stands for ('' for specials): what a symbol row can seed."""
    tok = self.tokens[i]
    if tok in SPECIALS:
      return ""
    if self._offset < 0 or i < self._offset:
      return tok
    if self.text == "bytes":
      return bytes([i - self._offset]).decode("latin-1") if i - self._offset < 128 else ""
    piece = tok[len(SP_PREFIX):]
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
      b = int(piece[3:5], 16)
      return chr(b) if b < 128 else ""
    return "" if piece in ("<unk>", "<s>", "</s>") else piece.replace("\u2581", " ")

  @functools.cached_property
  def byte_lengths(self) -> tuple[int, ...]:
    """UTF-8 bytes each token stands for, for bits-per-byte. <eos> stands for one byte: the
    separator a plain byte stream needs between documents, so that its loss (the model
    predicting where a document ends) is paid for in the denominator too; other specials: 0."""
    out = []
    for i, tok in enumerate(self.tokens):
      if tok == EOS:
        out.append(1)
      elif tok in SPECIALS:
        out.append(0)
      elif self._offset >= 0 and i >= self._offset and self.text == "bytes":
        out.append(1)
      elif self._offset >= 0 and i >= self._offset:
        piece = tok[len(SP_PREFIX):]
        byte = piece.startswith("<0x") and len(piece) == 6
        out.append(1 if byte else len(piece.replace("\u2581", " ").encode("utf-8")))
      else:
        out.append(len(tok.encode("utf-8")))
    return tuple(out)

  def allowed(self, ans: bool = True) -> np.ndarray:
    """Ids a model of this phase may output: the phase's action space for sampling and loss.

    Phase 1 outputs symbols, <eos> and <ans>; later phases text tokens, <eos> and <ans>
    (their strings are all tokenised as text, so symbol ids never occur as targets). The
    other specials are never targets, and <sep>/<bos> would decode to nothing, which would
    let a policy pad a short answer with them. For the same reason `ans=False` leaves out
    <ans> where nothing reads it (no trace, no scratchpad).
    """
    out = np.ones(self.size, bool)
    if self._offset >= 0:
      out[:self._offset] = False
    out[[self._ids[t] for t in SPECIALS]] = False
    out[self.eos_id] = True
    out[self.ans_id] = ans
    return out

  def is_prefix_of(self, other: "Vocab") -> bool:
    return other.tokens[: self.size] == self.tokens

  def first_difference(self, other: "Vocab") -> str:
    """Where `other` stops extending this vocabulary, in words (for error messages)."""
    for i, (a, b) in enumerate(zip(self.tokens, other.tokens)):
      if a != b:
        return f"id {i} is {a!r} in the old vocabulary and {b!r} in the new one"
    return f"the new vocabulary has {other.size} tokens, fewer than the old {self.size}"

  def to_json(self) -> dict:
    d = {"tokens": list(self.tokens), "text": self.text}
    if self.sp_model:
      d["sp_model"] = base64.b64encode(self.sp_model).decode("ascii")
    return d

  @classmethod
  def from_json(cls, d: dict) -> "Vocab":
    return cls(tuple(d["tokens"]), d.get("text", "chars"),
               base64.b64decode(d["sp_model"]) if d.get("sp_model") else b"")


def phase1_vocab(symbols: Iterable[str] = SYMBOLS) -> Vocab:
  return Vocab(SPECIALS + tuple(symbols))


def text_vocab(kind: str, symbols: Iterable[str] = SYMBOLS, sp_model: bytes = b"") -> Vocab:
  """The vocabulary of a phase: phase-1 layout plus text tokens of `kind`."""
  base = SPECIALS + tuple(symbols)
  if kind == "chars":
    return Vocab(base)
  if kind == "bytes":
    return Vocab(base + BYTE_TOKENS, "bytes")
  if kind == "sentencepiece":
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    pieces = tuple(SP_PREFIX + sp.id_to_piece(i) for i in range(sp.get_piece_size()))
    return Vocab(base + pieces, "sentencepiece", sp_model)
  raise ValueError(f"data.tokenizer must be one of {TEXT_KINDS}, got {kind!r}")


def train_sentencepiece(texts: Iterable[str], vocab_size: int) -> bytes:
  """A BPE model (serialized) trained on `texts`; lossless: decode(encode(s)) == s."""
  import sentencepiece as spm
  model = io.BytesIO()
  lines = (line for text in texts for line in text.split("\n") if line.strip())
  spm.SentencePieceTrainer.train(
      sentence_iterator=lines, model_writer=model, model_type="bpe",
      vocab_size=vocab_size, byte_fallback=True, character_coverage=1.0,
      normalization_rule_name="identity", remove_extra_whitespaces=False,
      split_digits=True, add_dummy_prefix=False, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
      max_sentence_length=1 << 16, shuffle_input_sentence=False, num_threads=1,
      minloglevel=2)
  return model.getvalue()
