"""python -m rf_jax.thesis [--config=configs/thesis.py[:tiny]] [--root=workdirs/thesis] [--seeds=0,1,2]

Does reasoning first transfer better than text first? Four arms train the same model at
matched training FLOPs, each run in its own workdir <root>/seed<k>/<arm>/<run>:

  text_first              phase 3 from scratch (text), then a short fine-tune on the
                          phase-1 tasks
  reasoning_first         phase 1 (next-token) -> phase 2 -> phase 3
  reasoning_first_reward  phase 1 with reward as well (objective mixed) -> phase 2 -> phase 3
  reasoning_memory        phase 1 -> 2 -> 3 with a small attention window throughout

`plan` sets every run's steps so that each phase costs the FLOPs of the reasoning_first arm's
phase (text_first's text run gets all three phases' FLOPs less its fine-tune). Each run is
`python -m rf_jax.main` in its own process; running the command again skips finished runs
and finished evaluations. The last run of each arm is evaluated with every evaluation probe
(rf_jax/probes: in-distribution and out-of-distribution levels, renamed syntax, Brainf*ck,
bridging), bits/byte with the arm's text run; the report gives mean and spread over seeds
of the probes' headline metrics (report.md, report.json, report.png under the root).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

from rf_jax import config as config_lib
from rf_jax import probes
from rf_jax.checkpoint import absolute
from rf_jax.config import names
from rf_jax.distributed import initialize
from rf_jax.errors import ConfigError
from rf_jax.evaluate import evaluate_run
from rf_jax.experiments import phases as phases_lib, pipeline, report as report_lib
from rf_jax.experiments.phases import Phase

# The built-in probes' headline metrics (rf_jax.probes.headline), then the arm's cost.
METRICS = probes.metric_names() + ("train_tflop",)
TEXT_PROBE = "bits_per_byte"  # measured on the arm's text run, not on its last run

load_config = config_lib.load      # "thesis.py:tiny", "phase1.py:tiny,baseline"
apply = config_lib.override        # (config, {"train.steps": 5}) -> config
_json = report_lib.read_json
_write = report_lib.write_file


@dataclasses.dataclass(frozen=True)
class Run(Phase):
  """A phase of one arm; its workdir is <root>/seed<k>/<arm>/<name>. Its config spec carries
  the experiment's phase preset, and its overrides every setting (train.steps included)."""
  arm: str = ""

  def seeded(self, seed: int) -> Phase:
    return dataclasses.replace(self, overrides={"seed": seed, **self.overrides})

  def root(self, root: str, seed: int) -> str:
    """The folder of the arm's workdirs for one seed."""
    return os.path.join(root, f"seed{seed}", self.arm)

  def argv(self, root: str, seed: int, python: str = sys.executable) -> list[str]:
    return phases_lib.argv(self.seeded(seed), self.root(root, seed), python=python)




def phase_spec(config, file: str, extra: str = "") -> str:
  """configs/<file> with the experiment's phase preset (and `extra`): "phase1.py:tiny"."""
  return phases_lib.with_preset(f"{file}:{extra}" if extra else file, config.phase_preset)


def arm_phases(config) -> dict[str, tuple[Phase, ...]]:
  """Every arm as a chain of the pipeline's phases with the arm's overrides (no steps yet).

  The reasoning arms are the pipeline's phase1 -> phase2 -> phase3; text first is its
  baseline (phase 3 from scratch), then a short fine-tune on the phase-1 tasks."""
  shared = common_overrides(config)
  r = config.reward
  reward = {"objective.kind": r.kind, "objective.rl_weight": r.rl_weight, "rl.prompts": r.prompts,
            "rl.group_size": r.group_size, "rl.prompt_len": r.prompt_len, "rl.max_new": r.max_new}
  window = {"model.attention_window": config.window}
  chain = phases_lib.lineage(pipeline.PHASES, "phase3")

  def reasoning(first=None, every=None):
    return tuple(p.with_overrides({**shared, **(first if i == 0 and first else {}), **(every or {})})
                 for i, p in enumerate(chain))

  text = dataclasses.replace(pipeline.phase("baseline"), name="text")
  finetune = Phase("tasks", "phase2.py", "text", finetune_overrides(config))
  return {
      "text_first": (text.with_overrides(shared), finetune.with_overrides(shared)),
      "reasoning_first": reasoning(),
      "reasoning_first_reward": reasoning(first=reward),
      "reasoning_memory": reasoning(every=window),
  }


def finetune_overrides(config) -> dict:
  """text_first's fine-tune: phase 2's setup on the phase-1 families only (symbolic tasks),
  evaluated on their verbal forms."""
  families = config_lib.names(load_config(phase_spec(config, "phase1.py")).data.tasks)
  return {"data.tasks": ",".join(families), "data.weights": "", "data.weights_end": "",
          "train.eval_tasks": ",".join("verbal_" + f for f in families)}


def plan(config) -> dict[str, list[Run]]:
  """The runs of every arm, with steps that match the reference arm's FLOPs phase by phase."""
  b = config.budget
  arms = arm_phases(config)
  wanted = list(config_lib.names(config.arms))
  unknown = set(wanted) - set(arms)
  if unknown:
    raise ConfigError(f"thesis arms {sorted(unknown)} are unknown; choose from {sorted(arms)}")
  per_step = lambda p: phases_lib.planned_flops(p.load(config.phase_preset))
  ref = {p.name: b[p.name] * per_step(p) for p in arms["reasoning_first"]}
  text, tasks = arms["text_first"]
  ft_flops = b.finetune * per_step(tasks)
  share = {("text_first", "text"): sum(ref.values()) - ft_flops,
           ("text_first", "tasks"): ft_flops}

  def run(arm, p):
    cfg = p.load(config.phase_preset)
    steps = max(1, round(share.get((arm, p.name), ref.get(p.name)) / phases_lib.planned_flops(cfg)))
    overrides = phases_lib.typed(cfg, {**p.overrides, "train.steps": steps})
    return Run(p.name, phase_spec(config, p.config), p.parent, overrides, arm=arm)

  return {a: [run(a, p) for p in arms[a]] for a in wanted}


def common_overrides(config) -> dict:
  """What every run gets: the preset's sizes and budgets, and the text corpus."""
  out = {k: v for k, v in config.common}
  if config.text_files:
    out["data.text_files"] = config.text_files
  elif config.text_files_required:
    raise ConfigError(f"the {config.slice.name or 'chosen'} preset trains on billions of text "
                      "tokens: pass --text_files=GLOB (e.g. gs://BUCKET/corpus/*.jsonl); the "
                      "built-in corpus is a few MB")
  return out


def run_config(run: Run):
  """The run's full ConfigDict (its spec already carries the phase preset)."""
  return run.load()


def run_tokens(run: Run) -> float:
  """Tokens of packed rows the run trains on (rollout tokens not counted)."""
  return run.overrides["train.steps"] * phases_lib.planned_cost(run_config(run))[0]


def run_flops(run: Run) -> float:
  return run.overrides["train.steps"] * phases_lib.planned_flops(run_config(run))


def arm_metrics(root: str, seed: int, runs: list[Run], config) -> dict:
  """The probes' headline metrics for the arm's last run (bits/byte: its text run, which
  text_first fine-tunes on tasks afterwards), cached in <run>/thesis_eval.json."""
  base = os.path.join(root, f"seed{seed}", runs[0].arm)
  last = os.path.join(base, runs[-1].name)
  cache = os.path.join(last, "thesis_eval.json")
  out = _json(cache)
  if out:
    return out
  families = list(names(load_config(phase_spec(config, "phase1.py")).data.tasks))
  text_run = next(r for r in runs if r.name in ("phase3", "text"))
  chosen = [p for p in probes.names() if p != TEXT_PROBE or text_run is runs[-1]]
  rep = evaluate_run(last, config.examples, families=families, probes=chosen,
                     train_levels=tuple(config.train_levels))
  out = probes.headline(rep)
  if text_run is not runs[-1]:
    out.update(probes.headline(evaluate_run(os.path.join(base, text_run.name), config.examples,
                                            probes=[TEXT_PROBE])))
  out["train_tflop"] = sum(run_flops(r) for r in runs) / 1e12
  import jax
  if jax.process_index() == 0:
    _write(cache, json.dumps(out, indent=1))
  return out


def summarize(per_seed: dict[str, list[dict]]) -> dict:
  """arm -> metric -> {mean, std, values}."""
  out = {}
  for arm, rows in per_seed.items():
    out[arm] = {}
    for m in METRICS:
      vals = [r[m] for r in rows if r.get(m) is not None]
      out[arm][m] = {"mean": float(np.mean(vals)) if vals else None,
                     "std": float(np.std(vals)) if vals else None, "values": vals}
  return out


def table(summary: dict) -> str:
  arms = list(summary)
  lines = ["| metric | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
  for m in METRICS:
    cells = []
    for a in arms:
      s = summary[a][m]
      fmt = ".4g" if m == "train_tflop" else ".3f"
      cells.append("-" if s["mean"] is None else f"{s['mean']:{fmt}} ± {s['std']:{fmt}}")
    lines.append(f"| {m} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def verdicts(summary: dict, reference: str = "text_first") -> list[str]:
  """For each arm and metric: is its difference from `reference` larger than the seed spread
  (|mean difference| > the sum of the two standard deviations)?"""
  out = []
  ref = summary.get(reference)
  if ref is None:
    return out
  for arm, metrics in summary.items():
    if arm == reference:
      continue
    for m in METRICS:
      if m == "train_tflop" or metrics[m]["mean"] is None or ref[m]["mean"] is None:
        continue
      diff = metrics[m]["mean"] - ref[m]["mean"]
      spread = metrics[m]["std"] + ref[m]["std"]
      beyond = abs(diff) > spread
      out.append(f"{arm} vs {reference}, {m}: {diff:+.3f} "
                 f"({'larger' if beyond else 'not larger'} than the seed spread {spread:.3f})")
  return out


def plot(summary: dict, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  shown = [m for m in METRICS if m != "train_tflop"]
  fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 3), squeeze=False)
  for ax, m in zip(axes.flat, shown):
    arms = [a for a in summary if summary[a][m]["mean"] is not None]
    ax.bar(range(len(arms)), [summary[a][m]["mean"] for a in arms],
           yerr=[summary[a][m]["std"] for a in arms], color=[f"C{i}" for i in range(len(arms))])
    for i, a in enumerate(arms):
      ax.scatter([i] * len(summary[a][m]["values"]), summary[a][m]["values"], s=8, color="k")
    ax.set_xticks(range(len(arms)), [a.replace("_", "\n") for a in arms], fontsize=6)
    ax.set_title(m, fontsize=9)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=90)
  plt.close(fig)
  _write(path, buf.getvalue())


def evaluate_arm(args, config, arms) -> int:
  """`--evaluate=SEED:ARM`, in its own process: on a slice every worker runs it, as one
  multi-process JAX job, so the driver itself never holds the accelerators."""
  initialize()
  from jax.experimental import multihost_utils
  seed, _, arm = args.evaluate.partition(":")
  arm_metrics(args.root, int(seed), arms[arm], config)
  # process 0 writes the cache; no worker's driver may look for it before that
  multihost_utils.sync_global_devices("thesis_eval_written")
  return 0


def estimate(config, flops: float) -> str:
  """The training FLOPs of one seed, and hours on the preset's slice at 40% MFU."""
  hours = flops / (0.4 * config.slice.chips * config.slice.peak) / 3600
  return (f"{config.slice.name}: {flops / 1e18:.3g} EFLOP per seed, about {hours:.1f} h per "
          f"seed at 40% MFU ({config.slice.chips} chips x {config.slice.peak / 1e12:.0f} TFLOP/s)")


def parse_args(argv):
  """(args, flags after -- for every run)."""
  argv = sys.argv[1:] if argv is None else list(argv)
  passed = argv[argv.index("--") + 1:] if "--" in argv else []
  argv = argv[:argv.index("--")] if "--" in argv else argv
  parser = argparse.ArgumentParser(
      prog="python -m rf_jax.thesis", description=__doc__.split("\n")[2],
      epilog="Flags after -- go to every run's python -m rf_jax.main.")
  parser.add_argument("--config", default="thesis.py", help="configs/thesis.py[:preset]")
  parser.add_argument("--root", default="workdirs/thesis", help="a folder or gs://BUCKET/PATH")
  parser.add_argument("--seeds", default="", help="comma-separated; default: config.seeds")
  parser.add_argument("--text_files", default="", help="the text runs' corpus (globs)")
  parser.add_argument("--dry-run", action="store_true", help="print the runs and their FLOPs")
  parser.add_argument("--evaluate", default="", help=argparse.SUPPRESS)  # SEED:ARM, internal
  args = parser.parse_args(argv)
  args.root = absolute(args.root)
  return args, passed


def experiment_config(args):
  """configs/thesis.py[:preset] with the command line's seeds and corpus."""
  config = load_config(args.config)
  if args.seeds:
    config.seeds = args.seeds
  if args.text_files:
    config.text_files = args.text_files
  return config


def print_plan(config, arms) -> None:
  """Every run's steps, tokens and FLOPs; the time estimate on the preset's slice."""
  flops = {(arm, r.name): run_flops(r) for arm, runs in arms.items() for r in runs}
  for arm, runs in arms.items():
    print(f"{arm}: " + " -> ".join(
        f"{r.name} ({r.overrides['train.steps']} steps, {run_tokens(r) / 1e9:.3g}B tokens, "
        f"{flops[arm, r.name] / 1e12:.3g} TFLOP)" for r in runs) +
          f"; total {sum(flops[arm, r.name] for r in runs) / 1e12:.3g} TFLOP", flush=True)
  if config.slice.chips:
    print(estimate(config, sum(flops.values())), flush=True)


def run_arm(args, config, seed: int, arm: str, runs: list[Run], extra: list[str]):
  """Trains the arm's runs for one seed and evaluates its last run (each in its own
  process); (exit status, the arm's metrics)."""
  rc = phases_lib.run_all([r.seeded(seed) for r in runs], runs[0].root(args.root, seed),
                          extra=extra, label=f"seed {seed} {arm}/")
  if rc:
    return rc, None
  cache = os.path.join(args.root, f"seed{seed}", arm, runs[-1].name, "thesis_eval.json")
  if not _json(cache):
    here = [f"--config={phases_lib.resolved(args.config)}", f"--root={args.root}",
            f"--seeds={config.seeds}"] + (
                [f"--text_files={config.text_files}"] if config.text_files else [])
    rc = subprocess.call([sys.executable, "-m", "rf_jax.thesis", *here, f"--evaluate={seed}:{arm}"])
    if rc or not _json(cache):
      print(f"error: evaluating seed {seed} {arm} failed (exit {rc}); rerun to retry",
            file=sys.stderr)
      return rc or 1, None
  return 0, _json(cache)


def write_report(root: str, arms, per_seed, seeds, t0: float) -> str:
  summary = summarize(per_seed)
  md = table(summary) + "\n\n" + "\n".join(f"- {v}" for v in verdicts(summary))
  report_lib.write(root, md, {"summary": summary, "seeds": seeds, "wall_s": time.time() - t0,
                              "runs": {a: [dataclasses.asdict(r) for r in rs]
                                       for a, rs in arms.items()}})
  plot(summary, os.path.join(root, "report.png"))
  return md


def main(argv=None) -> int:
  args, passed = parse_args(argv)
  try:
    config = experiment_config(args)
    seeds = [int(s) for s in config_lib.names(str(config.seeds))]
    arms = plan(config)
    if args.evaluate:
      return evaluate_arm(args, config, arms)
  except (ConfigError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print_plan(config, arms)
  if args.dry_run:
    return 0
  t0 = time.time()
  extra = (config.extra.split() if config.extra else []) + passed
  per_seed = {arm: [] for arm in arms}
  for seed in seeds:
    for arm, runs in arms.items():
      rc, metrics = run_arm(args, config, seed, arm, runs, extra)
      if rc:
        return rc
      per_seed[arm].append(metrics)
  md = write_report(args.root, arms, per_seed, seeds, t0)
  print(f"\nthesis done in {time.time() - t0:.0f} s; {args.root}/report.md:\n\n{md}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
