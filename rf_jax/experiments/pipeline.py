"""python -m rf_jax.pipeline [--root=workdirs/pipeline] [--preset=tiny] [-- TRAINER FLAGS]

Runs the three phases in sequence, each starting from the previous one's checkpoint, and
the text-first baseline (phase 3 from scratch, same token budget), then prints them side
by side. Every run is `python -m rf_jax.main` in its own process and workdir under the
root, so an interrupted pipeline resumes where it stopped when run again. The phases are
the records of PHASES: a new phase is one more record (and its config file).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from rf_jax import config as config_lib
from rf_jax.errors import ConfigError
from rf_jax.experiments import report as report_lib
from rf_jax.experiments.phases import Phase, argv as phase_argv, check_order, run_all

PHASES = (
    Phase("phase1", "phase1.py"),
    Phase("phase2", "phase2.py", parent="phase1"),
    Phase("phase3", "phase3.py", parent="phase2"),
    Phase("baseline", "phase3.py:baseline"),  # text first: phase 3 from scratch
)


def phase(name: str, phases: Sequence[Phase] = PHASES) -> Phase:
  return next(p for p in phases if p.name == name)


def commands(root: str, preset: str, extra: list[str], python: str = sys.executable,
             phases: Sequence[Phase] = PHASES) -> list[tuple[str, list[str]]]:
  """(name, argv) of every run, in order."""
  return [(p.name, phase_argv(p, root, preset, extra, python)) for p in check_order(phases)]


def bridging_exact(metrics: dict, level: int) -> float | None:
  """Mean greedy exact match over the verbal (bridging) families at `level`."""
  vals = [v for k, v in metrics.items()
          if k.startswith("eval/verbal_") and k.endswith(f"/L{level}/exact")]
  return sum(vals) / len(vals) if vals else None


def report(root: str, phases: Sequence[Phase] = PHASES) -> tuple[str, dict]:
  """The side-by-side table (markdown): the pipeline after phases 2 and 3, and the baseline."""
  runs = {p.name: report_lib.read_json(os.path.join(root, p.name, "final_metrics.json"))
          for p in phases}
  cols = (("pipeline after phase 2", runs["phase2"]), ("pipeline after phase 3", runs["phase3"]),
          ("baseline (phase 3 from scratch)", runs["baseline"]))
  levels = sorted({int(k.split("/L")[1].split("/")[0]) for _, m in cols for k in m
                   if k.startswith("eval/verbal_") and "/L" in k})
  table = {"phase-3 validation bits/byte (lower is better)":
           [m.get("val/bits_per_byte") for _, m in cols]}
  for level in levels:
    table[f"bridging exact match, level {level} (mean of verbal families)"] = [
        bridging_exact(m, level) for _, m in cols]
  table["training wall time (s)"] = [
      runs["phase1"].get("wall_time_s", 0.0) + runs["phase2"].get("wall_time_s", 0.0),
      sum(runs[n].get("wall_time_s", 0.0) for n in ("phase1", "phase2", "phase3")),
      runs["baseline"].get("wall_time_s")]
  fmt = lambda k, v: "-" if v is None else (f"{v:.0f}" if k.endswith("(s)") else f"{v:.3f}")
  lines = ["| | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
  lines += [f"| {k} | " + " | ".join(fmt(k, v) for v in vals) + " |" for k, vals in table.items()]
  return "\n".join(lines), {k: dict(zip((c for c, _ in cols), vals)) for k, vals in table.items()}


def selected(phases: Sequence[Phase], only: str) -> tuple[Phase, ...]:
  """The phases named in `only` (all if empty); unknown names are a one-line error."""
  wanted = set(config_lib.names(only))
  unknown = wanted - {p.name for p in phases}
  if unknown:
    raise ConfigError(f"--only names unknown runs {sorted(unknown)}; use "
                      + ",".join(p.name for p in phases))
  return tuple(p for p in phases if not wanted or p.name in wanted)


def main(argv=None, phases: Sequence[Phase] = PHASES) -> int:
  parser = argparse.ArgumentParser(prog="python -m rf_jax.pipeline",
                                   description=__doc__.split("\n")[2])
  parser.add_argument("--root", default="workdirs/pipeline", help="one workdir per run under it")
  parser.add_argument("--preset", default="", help="config preset for every phase, e.g. tiny")
  parser.add_argument("--only", default="", help="comma-separated runs to do (default: all)")
  parser.add_argument("--dry-run", action="store_true", help="print every run's command only")
  args, extra = parser.parse_known_args(argv)
  extra = [a for a in extra if a != "--"]
  try:
    check_order(phases)
    todo = selected(phases, args.only)
    t0 = time.time()
    rc = run_all(todo, args.root, args.preset, extra, dry_run=args.dry_run)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if rc or args.dry_run:
    return rc
  md, table = report(args.root, phases)
  report_lib.write(args.root, md, table)
  print(f"\npipeline done in {time.time() - t0:.0f} s; {args.root}/report.md:\n\n{md}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
