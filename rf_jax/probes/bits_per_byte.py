"""Bits per byte of the run's validation text (teacher forcing), for runs with text tokens.

The validation rows are the ones the trainer scores for data.source=text (the documents
`split_documents` holds out of data.text_files, cut into data.seq_len rows), so for a text
run the probe gives the trainer's final val/bits_per_byte.
"""
from __future__ import annotations

import jax
import numpy as np

from rf_jax.data import text as text_lib
from rf_jax.probes.base import Probe, register
from rf_jax.sampling import allowed_logits
from rf_jax.sharding import data_parallel_size, make_global_batch
from rf_jax.step import apply_model
from rf_jax.vocab import Vocab


class TextEvaluator:
  """Loss, perplexity and bits per byte of fixed validation rows (teacher forcing).

  With `allowed` (`Vocab.allowed()`) the distribution is the one training optimises and
  sampling draws from: ids outside the phase's output tokens (symbol rows after phase 1,
  table padding) get no probability mass.
  """

  def __init__(self, rows: dict, graphdef, mesh, byte_lengths, batch_size: int, allowed=None):
    self.mesh = mesh
    n_procs = jax.process_count()
    mult = data_parallel_size(mesh) * n_procs
    bs = -(-max(1, min(batch_size, len(rows["inputs"]))) // mult) * mult
    n = len(rows["inputs"])
    pad = -n % bs
    # Padding rows repeat row 0 with no loss: real segments keep attention well defined.
    padded = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in rows.items()}
    padded["loss_mask"][n:] = 0
    local = bs // n_procs
    lo = jax.process_index() * local
    # Each process feeds a disjoint slice; the sums do not care which rows sit where.
    self._batches = [{k: v[s + lo:s + lo + local] for k, v in padded.items()}
                     for s in range(0, n + pad, bs)]
    table = np.asarray(byte_lengths, np.float32)
    logits = lambda params, batch: (
        apply_model(graphdef, params, batch) if allowed is None
        else allowed_logits(apply_model(graphdef, params, batch), allowed))
    self._terms = jax.jit(lambda params, batch: text_lib.bits_per_byte_terms(
        logits(params, batch), batch, table))

  def __call__(self, params) -> dict[str, float]:
    with jax.set_mesh(self.mesh):  # dispatch every batch before reading any result back
      terms = [self._terms(params, make_global_batch(b, self.mesh)) for b in self._batches]
    # Host float64: no float32 drift when adding up many batches.
    totals = np.array([[float(x) for x in t] for t in terms], np.float64).sum(axis=0)
    return text_lib.text_metrics(*totals)


def validation_rows(config, vocab: Vocab) -> dict:
  """The trainer's validation rows for data.source=text (rf_jax.train.make_source)."""
  d = config.data
  docs = text_lib.load_documents(d.text_files, d.get("text_field", "text"))
  _, val_docs = text_lib.split_documents(docs, d.validation_fraction, config.seed)
  return text_lib.TextSource(val_docs, vocab, d.seq_len, config.seed).rows(d.validation_rows)


@register("bits_per_byte")
class BitsPerByte(Probe):
  metrics = ("bits_per_byte",)

  def applies(self, ctx):
    return ctx.run.vocab.text != "chars" and bool(ctx.config.data.get("text_files", ""))

  def summarize(self, ctx, results):
    run = ctx.run
    rows = validation_rows(ctx.config, run.vocab)
    m = TextEvaluator(rows, run.graphdef, run.mesh, run.vocab.byte_lengths,
                      int(ctx.config.train.batch_size), run.vocab.allowed())(run.params)
    return {"bits_per_byte": m["val/bits_per_byte"], "loss": m["val/loss"],
            "perplexity": m["val/perplexity"], "rows": int(len(rows["inputs"]))}

  def headline(self, section):
    return {"bits_per_byte": section["bits_per_byte"]}

  def table(self, section):
    return [f"bits per byte of the validation text ({section['rows']} rows): "
            f"{section['bits_per_byte']:.4f} (loss {section['loss']:.4f})"]
