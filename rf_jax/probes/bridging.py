"""Bridging: exact match of the run's verbal (plain English) families at level 1.

The verbal_* families (rf_jax/tasks/bridging.py) ask the phase-1 problems in English, so a
model reads them only once its vocabulary has text tokens. The probe applies to runs with
text tokens that trained or evaluated on verbal families (data.tasks, train.eval_tasks);
its items are the ones the trainer's own evaluation decodes at level 1.
"""
from __future__ import annotations

from rf_jax.greedy import task_items
from rf_jax.probes.base import FamilyProbe, register

LEVEL = 1


@register("bridging")
class Bridging(FamilyProbe):
  metrics = (f"bridging_L{LEVEL}",)
  label = "bridging (verbal families, level {level})"
  panel_title = "bridging L{level}"

  def applies(self, ctx):
    return ctx.run.vocab.text != "chars" and bool(ctx.verbal_families)

  def items(self, ctx):
    return task_items(ctx.verbal_families, (LEVEL,), ctx.n_per, ctx.seed)

  def summarize(self, ctx, results):
    return self.family_section(LEVEL, {name: results[(name, LEVEL)]["exact"]
                                       for name in ctx.verbal_families})
