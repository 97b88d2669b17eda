"""Evaluation probes, by name: each measures one thing about a checkpoint.

Built in: `levels` (exact match per family and level, in and out of distribution),
`renamed` (the same problems in an unfamiliar syntax), `brainfuck` and `befunge` (output
prediction in languages never trained on), `esolang_write` (writing Brainf*ck and Befunge
programs, judged by running them), `bridging` (the verbal families at level 1),
`bits_per_byte` (validation text) and `esolang_bench` (an EsoLang-Bench file's problems,
when the evaluator is given one). rf_jax/probes/base.py says how to write another;
`python -m rf_jax.evaluate --probe_modules=my_probe.py` runs it with the rest.
"""
from rf_jax.probes.base import (REGISTRY, Context, FamilyProbe, Panel, Probe, get, headline,
                                metric_names, names, register)
# Imported for their registrations, in the order reports list them.
from rf_jax.probes import (levels, renamed, brainfuck, befunge, esolang_write,  # noqa: E402,F401
                           bridging, bits_per_byte, esolang_bench)

__all__ = ["REGISTRY", "Context", "FamilyProbe", "Panel", "Probe", "get", "headline",
           "metric_names", "names", "register"]
