"""The evaluator: every probe on a run's checkpoint, as a report, a table, plots and a comparison.

    python -m rf_jax.evaluate --workdir=DIR [--compare=DIR2,DIR3] [--examples=64]
        [--probes=levels,renamed] [--probe_modules=my_probe.py,my_pkg.probes]
        [--esolang_bench=FILE]

The probes (rf_jax/probes/) are the registered ones, or those --probes names; by default:
exact match and partial credit per family and level, in-distribution (the levels it trained
on) and out-of-distribution (the levels above), renamed syntax, Brainf*ck and Befunge output
prediction, Brainf*ck and Befunge program writing, the verbal families and bits per byte
where a run has text tokens; with --esolang_bench, the Brainfuck and Befunge-98 problems of
an EsoLang-Bench file. User probes come from --probe_modules. Writes
`<workdir>/eval/step_<N>.json` (one section per probe), TensorBoard scalars and PNG plots;
with --compare, the runs' headline metrics side by side. The log ends with the timed split:
greedy decoding (scores included) and, within it, the seconds spent interpreting programs.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
import time

from etils import epath

from rf_jax import probes as probes_lib
from rf_jax import tasks as tasks_lib
from rf_jax.config import names as split_names
from rf_jax.errors import ConfigError
from rf_jax.greedy import GreedyEvaluator, scratchpad_of
from rf_jax.plugins import import_modules
from rf_jax.probes.base import Context, fmt
from rf_jax.runs import load_run


def chosen_probes(probes=None) -> list[probes_lib.Probe]:
  """The probes named (a tuple or "a,b"), or every registered one."""
  return [probes_lib.get(n) for n in (split_names(probes) if probes else probes_lib.names())]


def run_families(config, families=None) -> tuple[str, ...]:
  """The families to evaluate: `families`, else the run's data.tasks (user tasks imported)."""
  import_modules(config.data.get("task_modules", ""), "data.task_modules")
  for name in families or ():
    tasks_lib.get(name)  # a clear error for an unknown family
  return tuple(families) if families else split_names(config.data.tasks)


def decode(ctx: Context, active: list[probes_lib.Probe]) -> dict[str, dict]:
  """Every probe's items in one greedy pass: probe name -> {item key: result}."""
  items = [dataclasses.replace(it, key=(p.name, it.key)) for p in active for it in p.items(ctx)]
  out = {p.name: {} for p in active}
  if items:
    run = ctx.run
    res = GreedyEvaluator(items, run.graphdef, run.mesh, run.vocab,
                          bool(run.config.data.use_trace),
                          scratchpad=scratchpad_of(run.config)).results(run.params)
    for (name, key), r in res.items():
      out[name][key] = r
  return out


def by_family(sections: dict) -> dict[str, dict]:
  """The per-family fields of every section, merged: family -> {field: value}."""
  out: dict[str, dict] = {}
  for section in sections.values():
    for family, fields in ((section or {}).get("families") or {}).items():
      out.setdefault(family, {}).update(fields)
  return out


def evaluate_run(workdir: str, n_per: int = 64, step: int | None = None, families=None,
                 probes=None, train_levels: tuple[int, int] | None = None,
                 options: dict | None = None) -> dict:
  """Runs the probes (default: all registered) on a run's checkpoint; a JSON-able report.

  `families` narrows the task families (default: the run's); `train_levels` (lo, hi) counts
  those levels as in distribution for every family, instead of what the run trained on;
  `options` are the probes' (e.g. {"esolang_bench": FILE}).
  """
  t0 = time.time()
  chosen = chosen_probes(probes)
  run = load_run(workdir, step)
  ctx = Context(run, run_families(run.config, families), n_per,
                tuple(train_levels) if train_levels else None, dict(options or {}))
  active = [p for p in chosen if p.applies(ctx)]
  t1 = time.time()
  results = decode(ctx, active)
  decode_s = time.time() - t1
  sections = {p.name: p.summarize(ctx, results[p.name]) if p in active else None for p in chosen}
  seconds = time.time() - t0
  return {"workdir": str(workdir), "step": run.step, "train_levels": list(ctx.levels),
          "vocab_size": run.vocab.size, "vocab": run.vocab.tokens, "examples_per_cell": n_per,
          "probes": sections, "families": by_family(sections), "seconds": seconds,
          "timing": timing(sections, seconds, decode_s)}


def timing(sections: dict, seconds: float, decode_s: float) -> dict:
  """The timed split: the whole evaluation, the greedy pass (decoding and scoring), and the
  seconds probes spent interpreting programs (their sections' `interpret_seconds`)."""
  interpret = sum(float((s or {}).get("interpret_seconds", 0.0)) for s in sections.values())
  return {"total_s": seconds, "decode_and_score_s": decode_s, "interpret_s": interpret,
          "interpret_share": interpret / seconds if seconds > 0 else 0.0}


def timing_line(report: dict) -> str:
  t = report["timing"]
  return (f"timing: {t['total_s']:.1f}s in all, {t['decode_and_score_s']:.1f}s greedy decoding "
          f"and scoring, of which {t['interpret_s']:.2f}s interpreting programs "
          f"({100 * t['interpret_share']:.1f}% of the evaluation)")


def _label(report: dict) -> str:
  return os.path.basename(report["workdir"].rstrip("/")) or report["workdir"]


def table(report: dict) -> str:
  lines = [f"{report['workdir']} (step {report['step']}), {report['examples_per_cell']} "
           "examples per cell: exact match unless noted"]
  for name, section in report["probes"].items():
    lines += ([f"{name}: does not apply to this run"] if section is None
              else probes_lib.get(name).table(section))
  return "\n".join(lines)


def comparison(reports: list[dict]) -> str:
  """The headline metrics of several runs side by side, one row per metric."""
  heads = [probes_lib.headline(r) for r in reports]
  metrics = list(dict.fromkeys(m for h in heads for m in h))
  labels = [_label(r)[:14] for r in reports]
  lines = [f"{'metric':<22}" + "".join(f"{x:>16}" for x in labels)]
  for m in metrics:
    lines.append(f"{m:<22}" + "".join(f"{fmt(h.get(m)):>16}" for h in heads))
  return "\n".join(lines)


def panels(reports: list[dict]) -> dict[str, list[tuple[str, probes_lib.Panel]]]:
  """Panel title -> (run label, panel) of every run that has it, in the probes' order."""
  grid: dict[str, list] = {}
  for rep in reports:
    for name, section in rep["probes"].items():
      for panel in [] if section is None else probes_lib.get(name).panels(section):
        grid.setdefault(panel.title, []).append((_label(rep), panel))
  return grid


def _draw(ax, title: str, lines: list) -> None:
  xs = [x for _, p in lines for x in p.x]
  numeric = all(isinstance(x, (int, float)) for x in xs)
  for label, panel in lines:  # labels (families) are not a sequence: points, no line
    ax.plot(panel.x, panel.y, marker="o", linestyle="-" if numeric else "none", label=label)
  first = lines[0][1]
  if first.shade is not None:
    ax.axvspan(*first.shade, color="0.9")
  if numeric:
    ax.set_xticks(sorted(set(xs)))
  else:
    ax.tick_params(axis="x", labelrotation=60, labelsize=6)
  if all(0 <= y <= 1 for _, p in lines for y in p.y if y is not None):
    ax.set_ylim(-0.05, 1.05)
  ax.set_title(title, fontsize=9)
  ax.set_xlabel(first.xlabel, fontsize=7)
  ax.set_ylabel(first.ylabel, fontsize=7)


def plot(reports: list[dict], path: str) -> list[str]:
  """Every probe panel of the reports, one line per run; returns the panel titles drawn."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  grid = panels(reports)
  cols = max(1, min(5, len(grid)))
  rows = max(1, -(-len(grid) // cols))
  fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
  for ax, (title, lines) in zip(axes.flat, grid.items()):
    _draw(ax, title, lines)
  for ax in list(axes.flat)[len(grid):]:
    ax.axis("off")
  if grid:
    axes.flat[0].legend(fontsize=7)
  fig.tight_layout()
  buf = io.BytesIO()  # through epath: the workdir may be gs://
  fig.savefig(buf, format="png", dpi=90)
  plt.close(fig)
  epath.Path(path).write_bytes(buf.getvalue())
  return list(grid)


def scalars(report: dict) -> dict[str, float]:
  """TensorBoard scalars: the headline metrics and every number of the by-family view."""
  out = {f"transfer/{m}": v for m, v in probes_lib.headline(report).items() if v is not None}
  for family, fields in report["families"].items():
    out.update({f"transfer/{family}/{k}": v for k, v in fields.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)})
  return out


def write_report(report: dict) -> str:
  out = os.path.join(report["workdir"], "eval")
  epath.Path(out).mkdir(parents=True, exist_ok=True)
  epath.Path(out, f"step_{report['step']}.json").write_text(
      json.dumps({k: v for k, v in report.items() if k != "vocab"}, indent=1))
  from tensorboardX import SummaryWriter
  tb = SummaryWriter(out)
  for tag, value in scalars(report).items():
    tb.add_scalar(tag, value, report["step"])
  tb.close()
  plot([report], os.path.join(out, f"step_{report['step']}.png"))
  return out


def compare(workdirs: list[str], n_per: int, families=None, probes=None,
            train_levels=None, options: dict | None = None) -> list[dict]:
  reports = [evaluate_run(w, n_per, None, families, probes, train_levels, options)
             for w in workdirs]
  base = reports[0]
  for rep in reports[1:]:
    if rep["vocab"] != base["vocab"]:
      raise ConfigError(f"run {rep['workdir']} has a different vocabulary ({rep['vocab_size']} "
                        f"tokens) from {base['workdir']} ({base['vocab_size']}); compare runs "
                        "that share a vocabulary")
  return reports


def _parser():
  import argparse
  p = argparse.ArgumentParser(prog="python -m rf_jax.evaluate", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", required=True)
  p.add_argument("--compare", default="", help="comma-separated workdirs of other runs")
  p.add_argument("--examples", type=int, default=64, help="examples per family and level")
  p.add_argument("--step", type=int, default=None)
  p.add_argument("--families", default="", help="comma-separated subset of the run's families")
  p.add_argument("--probes", default="", help="comma-separated probes (default: all registered)")
  p.add_argument("--probe_modules", default="",
                 help="comma-separated modules or .py files that register more probes")
  p.add_argument("--esolang_bench", default="",
                 help="an EsoLang-Bench JSON file: score its Brainfuck and Befunge-98 problems")
  return p


def probe_options(args) -> tuple[dict, str]:
  """(probe options, probes to run) from the command line: --esolang_bench adds its probe
  to a --probes list that lacks it."""
  chosen = args.probes
  if not args.esolang_bench:
    return {}, chosen
  if chosen and "esolang_bench" not in split_names(chosen):
    chosen = f"{chosen},esolang_bench"
  return {"esolang_bench": args.esolang_bench}, chosen


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  families = list(split_names(args.families)) or None
  options, chosen = probe_options(args)
  try:
    import_modules(args.probe_modules, "--probe_modules")
    if args.compare:
      reports = compare([args.workdir] + list(split_names(args.compare)), args.examples,
                        families, chosen, options=options)
    else:
      reports = [evaluate_run(args.workdir, args.examples, args.step, families, chosen,
                              options=options)]
    for rep in reports:
      out = write_report(rep)
      print(table(rep))
      print(timing_line(rep))
      print(f"wrote {out}/step_{rep['step']}.json and .png ({rep['seconds']:.0f}s)\n")
    if len(reports) > 1:
      print(comparison(reports))
      path = os.path.join(args.workdir, "eval", "compare.png")
      plot(reports, path)
      print(f"wrote {path}")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
