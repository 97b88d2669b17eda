"""Greedy-decoding evaluation, and the transfer evaluator CLI.

    python -m rf_jax.evaluate --workdir=DIR [--compare=DIR2,DIR3] [--examples=64]

For every task family of a run, reports exact match and partial credit per level:
in-distribution (the levels it trained on), out-of-distribution (the levels above),
renamed syntax (rf_jax/transfer.py) and Brainf*ck output prediction. Writes
`<workdir>/eval/step_<N>.json`, TensorBoard scalars and PNG plots.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time
from typing import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from rf_jax import tasks as tasks_lib
from rf_jax.data.packing import encode_prompt, encode_target
from rf_jax.errors import ConfigError
from rf_jax.sampling import left_pad, sample
from rf_jax.sharding import batch_sharding, data_parallel_size
from rf_jax.vocab import Vocab

EVAL_SEED_OFFSET = 1_000_003  # eval items come from another seed than training rows


def _round_up(n: int, k: int) -> int:
  return -(-n // k) * k


def answer_text(vocab: Vocab, ids, use_trace: bool) -> str:
  """The scored part of a generation: up to <eos>, after the last <ans> if traces are on."""
  ids = [int(i) for i in ids]
  if vocab.eos_id in ids:
    ids = ids[:ids.index(vocab.eos_id)]
  if use_trace and vocab.ans_id in ids:
    ids = ids[len(ids) - ids[::-1].index(vocab.ans_id):]
  return vocab.decode(ids)


@dataclasses.dataclass
class Item:
  key: tuple  # what the result is reported under
  example: tasks_lib.Example
  score: Callable[[tasks_lib.Example, str], float]


class GreedyEvaluator:
  """Decodes a fixed list of items (bucketed by prompt length) and scores them."""

  def __init__(self, items: list[Item], graphdef, mesh, vocab: Vocab, use_trace: bool,
               bucket: int = 32):
    self.items, self.vocab, self.use_trace, self.mesh = items, vocab, use_trace, mesh
    self._sh = batch_sharding(mesh)
    rows_mult = data_parallel_size(mesh) * jax.process_count()
    prompts = [encode_prompt(vocab, it.example.prompt) for it in items]
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
      by_len.setdefault(_round_up(len(p), bucket), []).append(i)
    self._buckets = []
    for P, idx in sorted(by_len.items()):
      rows = [prompts[i] for i in idx]
      rows += [[vocab.bos_id]] * (_round_up(len(rows), rows_mult) - len(rows))
      tokens, mask = left_pad(rows, P, vocab.pad_id)
      max_new = _round_up(max(len(encode_target(vocab, items[i].example, use_trace))
                              for i in idx), 8)
      self._buckets.append((idx, tokens, mask, max_new))
    self._decode = functools.lru_cache(maxsize=None)(lambda max_new: jax.jit(
        functools.partial(sample, graphdef=graphdef, max_new=max_new, valid_vocab=vocab.allowed(),
                          eos_id=vocab.eos_id),
        in_shardings=(None, self._sh, self._sh, None), out_shardings=self._sh))

  def generate(self, params) -> list[str]:
    texts = [""] * len(self.items)
    with jax.set_mesh(self.mesh):
      for idx, tokens, mask, max_new in self._buckets:
        out = self._decode(max_new)(params, jax.device_put(tokens, self._sh),
                                    jax.device_put(mask, self._sh), jax.random.key(0))
        out = np.asarray(multihost_utils.process_allgather(out, tiled=True))
        for row, i in enumerate(idx):
          texts[i] = answer_text(self.vocab, out[row], self.use_trace)
    return texts

  def results(self, params) -> dict[tuple, dict[str, float]]:
    """key -> {"exact": mean exact match, "score": mean partial credit, "n": count}."""
    acc: dict[tuple, list] = {}
    self.last_outputs = self.generate(params)
    for it, text in zip(self.items, self.last_outputs):
      acc.setdefault(it.key, []).append((float(text == it.example.answer),
                                         float(it.score(it.example, text))))
    return {k: {"exact": float(np.mean([e for e, _ in v])),
                "score": float(np.mean([s for _, s in v])), "n": len(v)}
            for k, v in acc.items()}


def task_items(task_names, levels, n_per: int, seed: int) -> list[Item]:
  items = []
  for name in task_names:
    task = tasks_lib.get(name)
    for level in levels:
      for i in range(n_per):
        ex = tasks_lib.make_example(task, seed + EVAL_SEED_OFFSET, i, level)
        items.append(Item((name, level), ex, task.score))
  return items


class TrainingEvaluator:
  """The trainer's periodic eval: exact match per task and level, as flat metrics."""

  def __init__(self, task_names, levels, n_per, seed, vocab, use_trace, graphdef, mesh):
    self._eval = GreedyEvaluator(task_items(task_names, levels, n_per, seed), graphdef, mesh,
                                 vocab, use_trace)

  def __call__(self, params) -> dict[str, float]:
    res = self._eval.results(params)
    metrics = {}
    for (name, level), r in res.items():
      metrics[f"eval/{name}/L{level}/exact"] = r["exact"]
      metrics[f"eval/{name}/L{level}/score"] = r["score"]
    metrics["eval/mean_exact"] = float(np.mean([r["exact"] for r in res.values()]))
    return metrics

  def samples(self) -> list[dict]:
    """The prompts and greedy outputs of the last evaluation."""
    return [{"task": it.key[0], "level": it.key[1], "prompt": it.example.prompt,
             "answer": it.example.answer, "output": out}
            for it, out in zip(self._eval.items, self._eval.last_outputs)]


# --- the transfer evaluator ----------------------------------------------------------------

def transfer_items(task_names, n_per: int, seed: int, renamed_level: int) -> list[Item]:
  from rf_jax.tasks.base import positional_credit
  from rf_jax.transfer import esolang, renamed
  from rf_jax.esolang import MAX_LEVEL as BF_LEVELS
  from rf_jax.tasks.bridging import VERBAL_PREFIX
  items = []
  for name in task_names:
    task = tasks_lib.get(name)
    for level in range(1, task.max_level + 1):
      for i in range(n_per):
        ex = tasks_lib.make_example(task, seed + EVAL_SEED_OFFSET, i, level)
        items.append(Item(("level", name, level), ex, task.score))
    for i in range(n_per if not name.startswith(VERBAL_PREFIX) else 0):  # English: no syntax
      ex = tasks_lib.make_example(task, seed + EVAL_SEED_OFFSET, i, renamed_level)
      rng = np.random.default_rng([seed, i, renamed_level, 7])
      items.append(Item(("renamed", name, renamed_level), renamed(task, ex, rng), task.score))
  for level in range(1, BF_LEVELS + 1):
    for i in range(n_per):
      ex = esolang(np.random.default_rng([seed + EVAL_SEED_OFFSET, i, level, 11]), level)
      items.append(Item(("esolang", "bf", level), ex, lambda e, o: positional_credit(e.answer, o)))
  return items


def trained_levels(meta: dict, names, lo: int, hi: int) -> dict[str, int]:
  """The highest level each family was trained on: the curriculum's, else data.levels."""
  history = (meta.get("curriculum") or {}).get("history", {})
  kind = meta["config"].get("curriculum", {}).get("kind", "fixed")
  if kind == "fixed":
    return {n: hi for n in names}
  step = meta.get("step", 0)
  return {n: max([lvl for s, lvl in history.get(n, [(0, lo)]) if s <= step] or [lo])
          for n in names}


def evaluate_run(workdir: str, n_per: int = 64, step: int | None = None,
                 families: list[str] | None = None) -> dict:
  """Evaluates a run's checkpoint (all its task families, or `families`); a JSON-able report."""
  from rf_jax.runs import load_run
  from rf_jax.config import names as split_names
  from rf_jax.data.inputs import import_task_modules
  t0 = time.time()
  run = load_run(workdir, step)
  cfg = run.config
  import_task_modules(cfg.data.get("task_modules", ()))
  names = split_names(cfg.data.tasks)
  for name in families or []:
    tasks_lib.get(name)  # a clear error for an unknown family
  names = families or names
  lo, hi = (int(x) for x in cfg.data.levels)
  items = transfer_items(names, n_per, int(cfg.seed), renamed_level=lo)
  res = GreedyEvaluator(items, run.graphdef, run.mesh, run.vocab,
                        bool(cfg.data.use_trace)).results(run.params)
  families = {}
  reached = trained_levels(run.meta, names, lo, hi)
  for name in names:
    levels = {lvl: r for (kind, n, lvl), r in res.items() if kind == "level" and n == name}
    top = reached[name]
    ids = [levels[l]["exact"] for l in levels if lo <= l <= top]
    oods = [levels[l]["exact"] for l in levels if l > top]
    families[name] = {
        "trained_levels": [lo, top],
        "levels": {str(l): levels[l] for l in sorted(levels)},
        "in_distribution": float(np.mean(ids)) if ids else None,
        "out_of_distribution": float(np.mean(oods)) if oods else None,
        "renamed": res[("renamed", name, lo)]["exact"],
    }
  bf = {str(l): r for (kind, _, l), r in sorted(res.items()) if kind == "esolang"}
  return {"workdir": str(workdir), "step": run.step, "train_levels": [lo, hi],
          "vocab_size": run.vocab.size, "vocab": run.vocab.tokens,
          "families": families, "esolang": {"levels": bf,
                                             "mean": float(np.mean([r["exact"] for r in bf.values()]))},
          "examples_per_cell": n_per, "seconds": time.time() - t0}


def _fmt(x) -> str:
  return "  -  " if x is None else f"{x:5.2f}"


def table(report: dict) -> str:
  lines = [f"{report['workdir']} (step {report['step']}): exact match; in-distribution = "
           "the levels each family reached in training",
           f"{'family':<10} {'trained':>7} {'in-dist':>7} {'OOD':>7} {'renamed':>7}   by level"]
  for name, f in report["families"].items():
    by_level = " ".join(f"L{l}:{r['exact']:.2f}" for l, r in f["levels"].items())
    tl = f"{f['trained_levels'][0]}-{f['trained_levels'][1]}"
    lines.append(f"{name:<10} {tl:>7} {_fmt(f['in_distribution']):>7} "
                 f"{_fmt(f['out_of_distribution']):>7} {_fmt(f['renamed']):>7}   {by_level}")
  bf = report["esolang"]
  lines.append(f"{'esolang':<10} {'-':>7} {'':>7} {_fmt(bf['mean']):>7} {'':>7}   " +
               " ".join(f"L{l}:{r['exact']:.2f}" for l, r in bf["levels"].items()))
  return "\n".join(lines)


def plot(reports: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(reports[0]["families"]) + ["esolang"]
  cols = min(5, len(names))
  rows = -(-len(names) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
  for ax, name in zip(axes.flat, names):
    for rep in reports:
      src = rep["esolang"] if name == "esolang" else rep["families"].get(name)
      if src is None:
        continue
      lv = sorted(src["levels"], key=int)
      ax.plot([int(l) for l in lv], [src["levels"][l]["exact"] for l in lv], marker="o",
              label=os.path.basename(rep["workdir"].rstrip("/")))
    if name != "esolang":
      lo, top = reports[0]["families"][name]["trained_levels"]
      ax.axvspan(lo - 0.5, top + 0.5, color="0.9")
    ax.set_title(name, fontsize=9)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(range(1, 5))
  for ax in list(axes.flat)[len(names):]:
    ax.axis("off")
  axes.flat[0].legend(fontsize=7)
  fig.supxlabel("level (shaded: trained on)")
  fig.supylabel("exact match")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def write_report(report: dict) -> str:
  out = os.path.join(report["workdir"], "eval")
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, f"step_{report['step']}.json"), "w") as f:
    json.dump({k: v for k, v in report.items() if k != "vocab"}, f, indent=1)
  from tensorboardX import SummaryWriter
  tb = SummaryWriter(out)
  for name, fam in report["families"].items():
    for k in ("in_distribution", "out_of_distribution", "renamed"):
      if fam[k] is not None:
        tb.add_scalar(f"transfer/{name}/{k}", fam[k], report["step"])
  tb.add_scalar("transfer/esolang", report["esolang"]["mean"], report["step"])
  tb.close()
  plot([report], os.path.join(out, f"step_{report['step']}.png"))
  return out


def compare(workdirs: list[str], n_per: int, families=None) -> list[dict]:
  reports = [evaluate_run(w, n_per, None, families) for w in workdirs]
  base = reports[0]
  for rep in reports[1:]:
    if rep["vocab"] != base["vocab"]:
      raise ConfigError(f"run {rep['workdir']} has a different vocabulary ({rep['vocab_size']} "
                        f"tokens) from {base['workdir']} ({base['vocab_size']}); compare runs "
                        "that share a vocabulary")
  return reports


def main(argv=None) -> int:
  import argparse
  p = argparse.ArgumentParser(prog="python -m rf_jax.evaluate", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", required=True)
  p.add_argument("--compare", default="", help="comma-separated workdirs of other runs")
  p.add_argument("--examples", type=int, default=64, help="examples per family and level")
  p.add_argument("--step", type=int, default=None)
  p.add_argument("--families", default="", help="comma-separated subset of the run's families")
  args = p.parse_args(argv)
  families = [f for f in args.families.split(",") if f] or None
  try:
    if args.compare:
      reports = compare([args.workdir] + [w for w in args.compare.split(",") if w],
                        args.examples, families)
    else:
      reports = [evaluate_run(args.workdir, args.examples, args.step, families)]
    for rep in reports:
      out = write_report(rep)
      print(table(rep))
      print(f"wrote {out}/step_{rep['step']}.json and .png ({rep['seconds']:.0f}s)\n")
    if len(reports) > 1:
      path = os.path.join(args.workdir, "eval", "compare.png")
      plot(reports, path)
      print(f"wrote {path}")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
