"""python -m rf_jax.pipeline [--root=workdirs/pipeline] [--preset=tiny] [-- TRAINER FLAGS]

Runs the three phases in sequence, each starting from the previous one's checkpoint, and
the text-first baseline (phase 3 from scratch, same token budget), then prints them side
by side. Every run is `python -m rf_jax.main` in its own process and workdir under the
root, so an interrupted pipeline resumes where it stopped when run again.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (workdir name, config, the run it starts from)
RUNS = (("phase1", "phase1.py", None), ("phase2", "phase2.py", "phase1"),
        ("phase3", "phase3.py", "phase2"), ("baseline", "phase3.py", None))


def commands(root: str, preset: str, extra: list[str], python: str = sys.executable):
  """(name, argv) of every run, in order."""
  out = []
  for name, cfg, parent in RUNS:
    presets = ",".join(filter(None, [preset, "baseline" if name == "baseline" else ""]))
    argv = [python, "-m", "rf_jax.main",
            f"--config={os.path.join(REPO, 'configs', cfg)}" + (f":{presets}" if presets else ""),
            f"--workdir={root}/{name}"]
    if parent:
      argv.append(f"--config.init_from={root}/{parent}")
    out.append((name, argv + extra))
  return out


def run_logged(label: str, argv: list[str]) -> int:
  """Runs one stage's command in its own process, announced on the console; its exit status,
  with a one-line error when it failed (finished runs skip themselves on a rerun)."""
  print(f"=== {label}: {' '.join(argv[1:])}", flush=True)
  rc = subprocess.call(argv)
  if rc:
    print(f"error: {label} failed (exit {rc}); fix it and rerun the same command: finished runs "
          "are not repeated", file=sys.stderr)
  return rc


def _final(root: str, name: str) -> dict:
  path = os.path.join(root, name, "final_metrics.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def bridging_exact(metrics: dict, level: int) -> float | None:
  """Mean greedy exact match over the verbal (bridging) families at `level`."""
  vals = [v for k, v in metrics.items()
          if k.startswith("eval/verbal_") and k.endswith(f"/L{level}/exact")]
  return sum(vals) / len(vals) if vals else None


def report(root: str) -> tuple[str, dict]:
  """The side-by-side table (markdown): the pipeline after phases 2 and 3, and the baseline."""
  runs = {name: _final(root, name) for name, _, _ in RUNS}
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


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m rf_jax.pipeline", description=__doc__.split("\n")[2])
  parser.add_argument("--root", default="workdirs/pipeline", help="one workdir per run under it")
  parser.add_argument("--preset", default="", help="config preset for every phase, e.g. tiny")
  parser.add_argument("--only", default="", help="comma-separated runs to do (default: all)")
  args, extra = parser.parse_known_args(argv)
  extra = [a for a in extra if a != "--"]
  only = set(filter(None, args.only.split(",")))
  unknown = only - {n for n, _, _ in RUNS}
  if unknown:
    print(f"error: --only names unknown runs {sorted(unknown)}; use phase1,phase2,phase3,baseline",
          file=sys.stderr)
    return 2
  t0 = time.time()
  for name, argv_ in commands(args.root, args.preset, extra):
    if only and name not in only:
      continue
    rc = run_logged(name, argv_)
    if rc:
      return rc
  md, table = report(args.root)
  with open(os.path.join(args.root, "report.md"), "w") as f:
    f.write(md + "\n")
  with open(os.path.join(args.root, "report.json"), "w") as f:
    json.dump(table, f, indent=1)
  print(f"\npipeline done in {time.time() - t0:.0f} s; {args.root}/report.md:\n\n{md}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
