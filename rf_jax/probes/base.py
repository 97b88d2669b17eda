"""What a probe is, the registry of probes, and the scalar metrics of an evaluation report.

A probe measures one thing about a checkpoint. `rf_jax.evaluate` asks every chosen probe
whether it applies to the run, decodes the items of all of them in one greedy pass, hands
each probe its own results, and builds the report, its table, plots, TensorBoard scalars
and run comparisons from what the probes return. A new probe is one module:

    from rf_jax import probes, tasks
    from rf_jax.greedy import Item

    @probes.register("my_probe")
    class MyProbe(probes.Probe):
      metrics = ("my_probe",)

      def items(self, ctx):               # greedy-decoded and scored by rf_jax.evaluate
        task = tasks.get("copy")
        return [Item(("copy",), tasks.make_example(task, ctx.seed, i, 1), task.score)
                for i in range(ctx.n_per)]

      def summarize(self, ctx, results):  # results: item key -> {"exact", "score", "n"}
        return {"exact": results[("copy",)]["exact"]}

      def headline(self, section):
        return {"my_probe": section["exact"]}

named on the command line: `python -m rf_jax.evaluate --workdir=D --probe_modules=my_probe.py`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from rf_jax.config import names as split_names
from rf_jax.greedy import Item
from rf_jax.plugins import Registry
from rf_jax.runs import Run
from rf_jax.tasks.bridging import VERBAL_PREFIX


@dataclasses.dataclass(frozen=True)
class Context:
  """What a probe sees of the run it evaluates."""
  run: Run                    # config, vocab, meta (curriculum), params, graphdef, mesh, step
  families: tuple[str, ...]   # the task families to evaluate: the run's, or a chosen subset
  n_per: int                  # examples per family and level (per cell)
  # (lo, hi): the in-distribution levels of every family; None: what the run trained on
  train_levels: tuple[int, int] | None = None
  # probe options from the evaluator's command line, e.g. {"esolang_bench": FILE}
  options: dict = dataclasses.field(default_factory=dict)

  @property
  def config(self):
    return self.run.config

  @property
  def seed(self) -> int:
    return int(self.run.config.seed)

  @property
  def levels(self) -> tuple[int, int]:
    """The run's data.levels: the range its task mixture was built over."""
    lo, hi = self.run.config.data.levels
    return int(lo), int(hi)

  @property
  def run_families(self) -> tuple[str, ...]:
    """Every family the run trained or evaluated on (data.tasks, then train.eval_tasks)."""
    cfg = self.run.config
    found = split_names(cfg.data.tasks) + split_names(cfg.train.get("eval_tasks", ""))
    return tuple(dict.fromkeys(found))

  @property
  def verbal_families(self) -> tuple[str, ...]:
    return tuple(n for n in self.run_families if n.startswith(VERBAL_PREFIX))


@dataclasses.dataclass(frozen=True)
class Panel:
  """One subplot: y over x, one line per run. x are numbers (levels) or labels (families)."""
  title: str
  x: list
  y: list
  xlabel: str = "level"
  ylabel: str = "exact match"
  shade: tuple[float, float] | None = None  # an x range drawn grey, e.g. the trained levels


class Probe:
  """A probe; the defaults decode nothing, report nothing and draw nothing.

  `section` below is what `summarize` returned: a JSON-able dict, stored in the report
  under report["probes"][name]. A section may hold `families`: {family: {field: value}};
  the report merges those into report["families"], its by-family view.
  """
  name: str = ""                 # set by `register`
  metrics: tuple[str, ...] = ()  # the keys `headline` returns, known before any evaluation

  def applies(self, ctx: Context) -> bool:
    """False skips the probe for this run; its section is then None."""
    return True

  def items(self, ctx: Context) -> list[Item]:
    """Items to decode greedily; their keys only need to be unique within this probe."""
    return []

  def summarize(self, ctx: Context, results: dict[tuple, dict[str, float]]) -> dict:
    """The section, from item key -> {"exact", "score", "n"}. A probe that measures
    something other than greedy answers (bits per byte) returns no items and measures here."""
    raise NotImplementedError

  def headline(self, section: dict) -> dict[str, float | None]:
    """The scalar metrics (keys: `metrics`): the columns of comparisons and experiments."""
    return {}

  def table(self, section: dict) -> list[str]:
    """Lines of the printed report."""
    return []

  def panels(self, section: dict) -> list[Panel]:
    return []


class FamilyProbe(Probe):
  """A probe with one exact-match figure per family at one level (its only metric, e.g.
  renamed syntax, bridging): the section, headline, table line and panel are the same shape."""
  label = ""        # the table line's label, formatted with the section's level
  panel_title = ""  # the panel's title, formatted with the section's level

  def family_section(self, level: int, exact: dict[str, float]) -> dict:
    """The section from family -> exact match, mean included."""
    field = self.metrics[0]
    families = {name: {field: e} for name, e in exact.items()}
    return {"level": level, "families": families, "mean": mean(exact.values())}

  def _exact(self, section: dict) -> dict[str, float]:
    return {n: f[self.metrics[0]] for n, f in section["families"].items()}

  def headline(self, section):
    return {self.metrics[0]: section["mean"]}

  def table(self, section):
    return [self.label.format(level=section["level"]) + ": " +
            " ".join(f"{n}:{e:.2f}" for n, e in self._exact(section).items()) +
            f"   mean {fmt(section['mean']).strip()}"]

  def panels(self, section):
    exact = self._exact(section)
    return [Panel(self.panel_title.format(level=section["level"]), list(exact),
                  list(exact.values()), xlabel="family")]


REGISTRY: Registry[type[Probe]] = Registry(
    "probe", "register one with rf_jax.probes.register in a module and pass "
    "--probe_modules=my_probe.py")


def register(name: str):
  """Class decorator: `@register("name") class MyProbe(Probe): ...`."""
  def add(cls: type[Probe]) -> type[Probe]:
    cls.name = name
    return REGISTRY.register(name)(cls)
  return add


def get(name: str) -> Probe:
  return REGISTRY.get(name)()


def names() -> list[str]:
  return REGISTRY.names()


def metric_names(chosen=None) -> tuple[str, ...]:
  """The headline metric names of `chosen` probes (default: all registered), in order."""
  chosen = split_names(chosen) if chosen else names()
  return tuple(m for n in chosen for m in REGISTRY.get(n).metrics)


def headline(report: dict) -> dict[str, float | None]:
  """Every headline metric of the report's probes; None where a probe did not apply."""
  out: dict[str, float | None] = {}
  for name, section in report["probes"].items():
    probe = get(name)
    out.update(dict.fromkeys(probe.metrics) if section is None else probe.headline(section))
  return out


def mean(values) -> float | None:
  """The mean, or None for no values (a cell that does not exist is not a zero)."""
  values = list(values)
  return float(np.mean(values)) if values else None


def fmt(x) -> str:
  return "  -  " if x is None else f"{x:5.2f}"
