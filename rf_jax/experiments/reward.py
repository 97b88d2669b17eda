"""python -m rf_jax.reward: learning to reason from scratch by reward, against next-token
prediction and against next-token pretraining followed by reward fine-tuning, at equal
training FLOPs.

Every arm trains the default phase-1 model on the same families and curriculum until its
counted training FLOPs reach `--tflop` (train.flop_budget; `perf/train_flops` in each run's
log), so machines of different speed run the same experiment. Arms:

  next_token            imitation only
  rl_sequence           reward only, one reward per sample
  rl_token              reward only, reward per token (Task.token_rewards)
  rl_token_scratchpad   rl_token with a free scratchpad before <ans>
  spt_rft               next-token for --spt_share of the budget, then rl_token from it

The reward arms use the `reward` preset of configs/phase1.py (how it explores is written
there). Each finished arm is evaluated by rf_jax.evaluate (levels, renamed syntax, esolang,
...). The report (<root>/report.md, .json, .png) gives per arm: families at >= 0.9 greedy
exact match at level 1, exact match in and out of distribution and in renamed syntax (mean
and spread over seeds), and a plot of exact match against training FLOPs from the periodic
evaluations. Rerunning the command resumes: finished runs are not repeated. `--set KEY=VALUE`
overrides a config field in every run (`--set rl.prompts=16`).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import sys

import numpy as np

from rf_jax import config as config_lib
from rf_jax import probes
from rf_jax.evaluate import evaluate_run
from rf_jax.experiments import phases as phases_lib, report as report_lib
from rf_jax.experiments.phases import Phase

REWARD = "phase1.py:reward"
ARMS = {
    "next_token": (Phase("train", "phase1.py"),),
    "rl_sequence": (Phase("train", REWARD, overrides={"rl.credit": "sequence",
                                                      "rl.advantage": "grpo"}),),
    "rl_token": (Phase("train", REWARD, overrides={"rl.credit": "token"}),),
    "rl_token_scratchpad": (Phase("train", REWARD, overrides={
        "rl.credit": "token", "rl.scratchpad": 8, "rl.pass_rate": "samples"}),),
    "spt_rft": (Phase("spt", "phase1.py"),
                Phase("rft", REWARD, parent="spt", overrides={"rl.credit": "token"})),
}
SOLVED = 0.9  # greedy exact match at level 1 that counts a family as learned
METRICS = ("families_solved", "level1_exact", "in_distribution", "out_of_distribution",
           "renamed", "train_tflop")


def budgets(arm: str, flops: float, spt_share: float) -> list[float]:
  """The FLOPs each of the arm's phases may spend."""
  if len(ARMS[arm]) == 1:
    return [flops]
  return [flops * spt_share, flops * (1 - spt_share)]


def runs(arm: str, seed: int, flops: float, spt_share: float, preset: str, eval_every: int,
         overrides: dict | None = None) -> list[Phase]:
  """The arm's phases for one seed, each stopped by its FLOP budget, over which its learning
  rate decays (train.decay_over = budget). A reward step costs what the policy writes, so
  reward phases get ample `train.steps`; a next-token phase gets the steps its budget buys."""
  out = []
  for phase, budget in zip(ARMS[arm], budgets(arm, flops, spt_share)):
    phase = dataclasses.replace(phase, overrides={**(overrides or {}), **phase.overrides})
    cfg = phase.load(preset)
    per_step = phases_lib.planned_flops(cfg)
    slack = 100 if phase.config == REWARD else 1
    steps = max(1, math.ceil(slack * budget / per_step))
    out.append(phase.with_overrides({
        "seed": seed, "train.steps": steps, "train.flop_budget": budget,
        "train.decay_over": "budget",
        "train.eval_every": eval_every, "train.eval_levels": (1,), "train.time_budget_s": 0.0}))
  return out


def curve(workdir: str, offset: float = 0.0) -> list[dict]:
  """(training FLOPs, mean exact match at level 1, families at >= SOLVED) at each of a run's
  periodic evaluations, from its metrics.jsonl."""
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  flops = {r["step"]: r["perf/train_flops"] for r in rows if "perf/train_flops" in r}
  out = []
  for r in rows:
    fams = {k.split("/")[1]: v for k, v in r.items() if k.startswith("eval/")
            and k.endswith("/L1/exact")}
    if fams and flops:
      at = max((s for s in flops if s <= r["step"]), default=min(flops))
      out.append({"tflop": (offset + flops[at]) / 1e12, "level1_exact": float(np.mean(
          list(fams.values()))), "families_solved": sum(v >= SOLVED for v in fams.values())})
  return out


def spent(workdir: str) -> float:
  """The counted training FLOPs of a finished run."""
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  return max((r["perf/train_flops"] for r in rows if "perf/train_flops" in r), default=0.0)


def arm_result(root: str, seed: int, arm: str, examples: int) -> dict:
  """The arm's metrics for one seed (cached in the last run's reward_eval.json)."""
  base = os.path.join(root, f"seed{seed}", arm)
  names = [p.name for p in ARMS[arm]]
  last = os.path.join(base, names[-1])
  cache = os.path.join(last, "reward_eval.json")
  out = report_lib.read_json(cache)
  if out:
    return out
  rep = evaluate_run(last, examples, train_levels=(1, 3))
  head = probes.headline(rep)
  level1 = {f: fields["levels"]["1"]["exact"] for f, fields in
            rep["probes"]["levels"]["families"].items()}
  offset, points = 0.0, []
  for name in names:
    points += curve(os.path.join(base, name), offset)
    offset += spent(os.path.join(base, name))
  out = {**head, "families_solved": sum(v >= SOLVED for v in level1.values()),
         "level1_exact": float(np.mean(list(level1.values()))), "level1": level1,
         "train_tflop": offset / 1e12, "curve": points}
  report_lib.write_file(cache, json.dumps(out, indent=1))
  return out


def summarize(results: dict[str, list[dict]]) -> dict:
  """arm -> metric -> {mean, std, values} over seeds."""
  return report_lib.over_seeds(results, METRICS)


def table(summary: dict) -> str:
  lines = ["| arm | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
  for arm, metrics in summary.items():
    cells = ["-" if metrics[m]["mean"] is None else
             f"{metrics[m]['mean']:.3g} ± {metrics[m]['std']:.2g}" for m in METRICS]
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot(results: dict[str, list[dict]]) -> bytes:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  for i, (arm, rows) in enumerate(results.items()):
    for j, r in enumerate(rows):
      xs = [p["tflop"] for p in r["curve"]]
      for ax, key in zip(axes, ("level1_exact", "families_solved")):
        ax.plot(xs, [p[key] for p in r["curve"]], color=f"C{i}", alpha=0.8,
                label=arm if j == 0 else None)
  axes[0].set_ylabel("mean greedy exact match, level 1")
  axes[1].set_ylabel(f"families at >= {SOLVED} (level 1)")
  for ax in axes:
    ax.set_xlabel("training TFLOP (counted)")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=120)
  plt.close(fig)
  return buf.getvalue()


def parse_args(argv):
  p = argparse.ArgumentParser(prog="python -m rf_jax.reward", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--root", default="workdirs/reward")
  p.add_argument("--tflop", type=float, required=True,
                 help="counted training TFLOP per arm and seed")
  p.add_argument("--arms", default=",".join(ARMS))
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--spt_share", type=float, default=0.5,
                 help="spt_rft: the share of the budget spent on next-token pretraining")
  p.add_argument("--preset", default="", help="a preset given to every run (tiny: tests)")
  p.add_argument("--eval_every", type=int, default=200)
  p.add_argument("--examples", type=int, default=64, help="evaluator examples per cell")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="a config override for every run, e.g. --set rl.prompts=16 (repeatable)")
  p.add_argument("--dry-run", action="store_true")
  args = p.parse_args(argv)
  args.overrides = {}
  for item in args.set:
    key, sep, value = item.partition("=")
    if not sep:
      p.error(f"--set {item!r}: write KEY=VALUE, e.g. --set rl.prompts=16")
    args.overrides[key] = config_lib.literal(value)
  unknown = [a for a in config_lib.names(args.arms) if a not in ARMS]
  if unknown:
    p.error(f"unknown arm {unknown[0]!r}; known: {', '.join(ARMS)}")
  return args


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  arms, seeds = config_lib.names(args.arms), [int(s) for s in config_lib.names(args.seeds)]
  results: dict[str, list[dict]] = {a: [] for a in arms}
  for seed in seeds:
    for arm in arms:
      phases = runs(arm, seed, args.tflop * 1e12, args.spt_share, args.preset, args.eval_every,
                    args.overrides)
      rc = phases_lib.run_all(phases, os.path.join(args.root, f"seed{seed}", arm), args.preset,
                              label=f"seed{seed}/{arm}/", dry_run=args.dry_run)
      if rc:
        return rc
      if not args.dry_run:
        results[arm].append(arm_result(args.root, seed, arm, args.examples))
  if args.dry_run:
    return 0
  summary = summarize(results)
  md = (f"# Reward from scratch at {args.tflop:g} TFLOP per run\n\n"
        f"Seeds {args.seeds}; mean ± standard deviation over seeds.\n\n{table(summary)}\n")
  paths = report_lib.write(args.root, md, {"summary": summary, "results": results},
                           plot(results))
  print(md)
  print("report:", ", ".join(paths.values()))
  return 0
