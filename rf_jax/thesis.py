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
from etils import epath

from rf_jax import probes
from rf_jax.config import names
from rf_jax.evaluate import evaluate_run
from rf_jax.pipeline import run_logged

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The built-in probes' headline metrics (rf_jax.probes.headline), then the arm's cost.
METRICS = probes.metric_names() + ("train_tflop",)
TEXT_PROBE = "bits_per_byte"  # measured on the arm's text run, not on its last run


@dataclasses.dataclass
class Run:
  arm: str
  name: str               # workdir name under <root>/seed<k>/
  config: str             # configs/<file>.py[:preset]
  overrides: dict         # dotted config key -> value
  parent: str | None      # the run it starts from (init_from), in the same arm and seed

  def argv(self, root: str, seed: int, python: str = sys.executable) -> list[str]:
    base = os.path.join(root, f"seed{seed}", self.arm)
    out = [python, "-m", "rf_jax.main", f"--config={os.path.join(REPO, 'configs', self.config)}",
           f"--workdir={base}/{self.name}", f"--config.seed={seed}"]
    if self.parent:
      out.append(f"--config.init_from={base}/{self.parent}")
    return out + [f"--config.{k}={_flag(v)}" for k, v in self.overrides.items()]


def _flag(v) -> str:
  return ",".join(str(x) for x in v) if isinstance(v, (tuple, list)) else str(v)


def load_config(spec: str):
  from rf_jax.bench import load_config as load
  path, _, preset = spec.partition(":")
  return load(os.path.join(REPO, "configs", path) + (f":{preset}" if preset else ""))


def apply(config, overrides: dict):
  for key, value in overrides.items():
    *path, leaf = key.split(".")
    node = config
    for p in path:
      node = node[p]
    node[leaf] = value
  return config


def step_flops(config) -> float:
  """Training FLOPs of one step of a phase config: next-token rows, plus rollouts (a forward
  pass per sampled token) and their policy-gradient updates when the objective uses reward."""
  from rf_jax.model import flops_per_token
  from rf_jax.train_state import model_config
  from rf_jax.vocab import phase1_vocab, text_vocab
  vocab = phase1_vocab() if config.data.tokenizer == "chars" else text_vocab("bytes")
  cfg = model_config(config, vocab)
  t, seq = config.train, config.data.seq_len
  kind = config.objective.kind
  flops = 0.0 if kind == "rl" else t.batch_size * seq * flops_per_token(cfg, seq)
  if kind in ("rl", "mixed"):
    r = config.rl
    n = r.prompt_len + r.max_new
    tokens = r.prompts * r.group_size * n
    flops += tokens * flops_per_token(cfg, n) * (1 / 3 + r.updates_per_batch)
  return flops


def phase_spec(config, file: str, extra: str = "") -> str:
  """configs/<file> with the experiment's phase preset (and `extra`): "phase1.py:tiny"."""
  presets = ",".join(filter(None, [config.phase_preset, extra]))
  return f"{file}:{presets}" if presets else file


def plan(config) -> dict[str, list[Run]]:
  """The runs of every arm, with steps that match the reference arm's FLOPs phase by phase."""
  spec = lambda file, extra="": phase_spec(config, file, extra)
  b = config.budget
  shared = common_overrides(config)
  budget = lambda file, steps: steps * step_flops(apply(load_config(spec(file)), shared))
  phases = {"phase1": budget("phase1.py", b.phase1), "phase2": budget("phase2.py", b.phase2),
            "phase3": budget("phase3.py", b.phase3)}

  def run(arm, name, file, share, parent=None, extra="", **ov):
    ov = {**shared, **ov}
    cfg = apply(load_config(spec(file, extra)), ov)
    steps = max(1, round(share / step_flops(cfg)))
    return Run(arm, name, spec(file, extra), {**ov, "train.steps": steps}, parent)

  def three(arm, **ov1):
    return [run(arm, "phase1", "phase1.py", phases["phase1"], **ov1, **per_arm[arm]),
            run(arm, "phase2", "phase2.py", phases["phase2"], "phase1", **per_arm[arm]),
            run(arm, "phase3", "phase3.py", phases["phase3"], "phase2", **per_arm[arm])]

  r = config.reward
  per_arm = {"reasoning_first": {}, "reasoning_first_reward": {},
            "reasoning_memory": {"model.attention_window": config.window}}
  families = load_config(spec("phase1.py")).data.tasks
  verbal = ",".join("verbal_" + f for f in families.split(","))
  finetune = {"data.tasks": families, "data.weights": "", "data.weights_end": "",
              "train.eval_tasks": verbal}
  ft_flops = b.finetune * step_flops(apply(load_config(spec("phase2.py")), {**shared, **finetune}))
  arms = {
      "text_first": [run("text_first", "text", "phase3.py", sum(phases.values()) - ft_flops,
                         extra="baseline"),
                     run("text_first", "tasks", "phase2.py", ft_flops, "text", **finetune)],
      "reasoning_first": three("reasoning_first"),
      "reasoning_first_reward": three(
          "reasoning_first_reward", **{"objective.kind": r.kind, "objective.rl_weight": r.rl_weight,
                                       "rl.prompts": r.prompts, "rl.group_size": r.group_size,
                                       "rl.prompt_len": r.prompt_len, "rl.max_new": r.max_new}),
      "reasoning_memory": three("reasoning_memory"),
  }
  wanted = [a for a in config.arms.split(",") if a]
  unknown = set(wanted) - set(arms)
  if unknown:
    from rf_jax.errors import ConfigError
    raise ConfigError(f"thesis arms {sorted(unknown)} are unknown; choose from {sorted(arms)}")
  return {a: arms[a] for a in wanted}


def common_overrides(config) -> dict:
  """What every run gets: the preset's sizes and budgets, and the text corpus."""
  out = {k: v for k, v in config.common}
  if config.text_files:
    out["data.text_files"] = config.text_files
  elif config.text_files_required:
    from rf_jax.errors import ConfigError
    raise ConfigError(f"the {config.slice.name or 'chosen'} preset trains on billions of text "
                      "tokens: pass --text_files=GLOB (e.g. gs://BUCKET/corpus/*.jsonl); the "
                      "built-in corpus is a few MB")
  return out


def run_tokens(run: Run) -> float:
  """Tokens of next-token rows the run trains on (rollout tokens not counted)."""
  cfg = apply(load_config(run.config), run.overrides)
  return 0.0 if cfg.objective.kind == "rl" else (
      run.overrides["train.steps"] * cfg.train.batch_size * cfg.data.seq_len)


def run_flops(run: Run) -> float:
  return run.overrides["train.steps"] * step_flops(apply(load_config(run.config), run.overrides))


def _json(path: str) -> dict:
  p = epath.Path(path)
  return json.loads(p.read_text()) if p.exists() else {}


def _write(path: str, data) -> None:
  epath.Path(path).write_bytes(data if isinstance(data, bytes) else data.encode())


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
  from rf_jax.distributed import initialize
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


def main(argv=None) -> int:
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
  from rf_jax.checkpoint import absolute
  from rf_jax.errors import ConfigError
  args.root = absolute(args.root)
  try:
    config = load_config(os.path.basename(args.config))
    if args.seeds:
      config.seeds = args.seeds
    if args.text_files:
      config.text_files = args.text_files
    seeds = [int(s) for s in str(config.seeds).split(",")]
    arms = plan(config)
    if args.evaluate:
      return evaluate_arm(args, config, arms)
  except (ConfigError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  flops = {(arm, r.name): run_flops(r) for arm, runs in arms.items() for r in runs}
  for arm, runs in arms.items():
    print(f"{arm}: " + " -> ".join(
        f"{r.name} ({r.overrides['train.steps']} steps, {run_tokens(r) / 1e9:.3g}B tokens, "
        f"{flops[arm, r.name] / 1e12:.3g} TFLOP)" for r in runs) +
          f"; total {sum(flops[arm, r.name] for r in runs) / 1e12:.3g} TFLOP", flush=True)
  if config.slice.chips:
    print(estimate(config, sum(flops.values())), flush=True)
  if args.dry_run:
    return 0
  t0 = time.time()
  extra = (config.extra.split() if config.extra else []) + passed
  here = [f"--config={args.config}", f"--root={args.root}", f"--seeds={config.seeds}"] + (
      [f"--text_files={config.text_files}"] if config.text_files else [])
  per_seed = {arm: [] for arm in arms}
  for seed in seeds:
    for arm, runs in arms.items():
      for r in runs:
        rc = run_logged(f"seed {seed} {arm}/{r.name}", r.argv(args.root, seed) + extra)
        if rc:
          return rc
      cache = os.path.join(args.root, f"seed{seed}", arm, runs[-1].name, "thesis_eval.json")
      if not _json(cache):
        rc = subprocess.call([sys.executable, "-m", "rf_jax.thesis", *here,
                              f"--evaluate={seed}:{arm}"], cwd=REPO)
        if rc or not _json(cache):
          print(f"error: evaluating seed {seed} {arm} failed (exit {rc}); rerun to retry",
                file=sys.stderr)
          return rc or 1
      per_seed[arm].append(_json(cache))
  summary = summarize(per_seed)
  md = table(summary) + "\n\n" + "\n".join(f"- {v}" for v in verdicts(summary))
  epath.Path(args.root).mkdir(parents=True, exist_ok=True)
  _write(os.path.join(args.root, "report.md"), md + "\n")
  _write(os.path.join(args.root, "report.json"), json.dumps(
      {"summary": summary, "seeds": seeds, "wall_s": time.time() - t0,
       "runs": {a: [dataclasses.asdict(r) for r in rs] for a, rs in arms.items()}}, indent=1))
  plot(summary, os.path.join(args.root, "report.png"))
  print(f"\nthesis done in {time.time() - t0:.0f} s; {args.root}/report.md:\n\n{md}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
