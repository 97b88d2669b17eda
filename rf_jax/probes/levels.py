"""Exact match and partial credit of every task family at every level it has.

In-distribution levels are the ones a family reached in training (the curriculum's history
in the checkpoint, else data.levels, unless the caller fixes them); the levels above, up to
the family's max_level, are out of distribution: the length and depth generalisation the
tasks are built to test.
"""
from __future__ import annotations

from rf_jax import tasks as tasks_lib
from rf_jax.greedy import task_items
from rf_jax.probes.base import Context, Panel, Probe, fmt, mean, register


def trained_levels(meta: dict, names, lo: int, hi: int) -> dict[str, int]:
  """The highest level each family was trained on: the curriculum's, else data.levels."""
  history = (meta.get("curriculum") or {}).get("history", {})
  kind = meta["config"].get("curriculum", {}).get("kind", "fixed")
  if kind == "fixed":
    return {n: hi for n in names}
  step = meta.get("step", 0)
  return {n: max([lvl for s, lvl in history.get(n, [(0, lo)]) if s <= step] or [lo])
          for n in names}


def _reached(ctx: Context) -> tuple[int, dict[str, int]]:
  if ctx.train_levels is not None:
    lo, hi = ctx.train_levels
    return lo, {n: hi for n in ctx.families}
  lo, hi = ctx.levels
  return lo, trained_levels(ctx.run.meta, ctx.families, lo, hi)


def _cells(families: dict, where) -> list[float]:
  """Exact match of every cell (family x level) `where(level, lo, top)` picks: pooled over
  cells, so every example weighs the same."""
  return [r["exact"] for f in families.values() for lvl, r in f["levels"].items()
          if where(int(lvl), *f["trained_levels"])]


@register("levels")
class Levels(Probe):
  metrics = ("in_distribution", "out_of_distribution")

  def items(self, ctx):
    return [item for name in ctx.families for item in task_items(
        [name], range(1, tasks_lib.get(name).max_level + 1), ctx.n_per, ctx.seed)]

  def summarize(self, ctx, results):
    lo, reached = _reached(ctx)
    families = {}
    for name in ctx.families:
      levels = {lvl: r for (n, lvl), r in results.items() if n == name}
      top = reached[name]
      families[name] = {
          "trained_levels": [lo, top],
          "levels": {str(lvl): levels[lvl] for lvl in sorted(levels)},
          "in_distribution": mean(r["exact"] for lvl, r in levels.items() if lo <= lvl <= top),
          "out_of_distribution": mean(r["exact"] for lvl, r in levels.items() if lvl > top),
      }
    return {"families": families,
            "in_distribution": mean(_cells(families, lambda lvl, lo, top: lo <= lvl <= top)),
            "out_of_distribution": mean(_cells(families, lambda lvl, lo, top: lvl > top))}

  def headline(self, section):
    return {m: section[m] for m in self.metrics}

  def table(self, section):
    lines = [f"{'family':<12} {'trained':>7} {'in-dist':>7} {'OOD':>7}   by level "
             "(in-distribution: the levels a family reached in training)"]
    for name, f in section["families"].items():
      by_level = " ".join(f"L{lvl}:{r['exact']:.2f}" for lvl, r in f["levels"].items())
      tl = f"{f['trained_levels'][0]}-{f['trained_levels'][1]}"
      lines.append(f"{name:<12} {tl:>7} {fmt(f['in_distribution']):>7} "
                   f"{fmt(f['out_of_distribution']):>7}   {by_level}")
    lines.append(f"{'all cells':<12} {'':>7} {fmt(section['in_distribution']):>7} "
                 f"{fmt(section['out_of_distribution']):>7}")
    return lines

  def panels(self, section):
    out = []
    for name, f in section["families"].items():
      lv = sorted(f["levels"], key=int)
      lo, top = f["trained_levels"]
      out.append(Panel(name, [int(lvl) for lvl in lv], [f["levels"][lvl]["exact"] for lvl in lv],
                       xlabel="level (shaded: trained)", shade=(lo - 0.5, top + 0.5)))
    return out
