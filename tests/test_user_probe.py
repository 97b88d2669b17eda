"""A probe written outside the package is run, reported, tabled, plotted and compared."""
import json
import shutil
import sys

import jax
import pytest

from rf_jax import evaluate, probes, sharding, train

from helpers import load_config, run_on_one_device

USER_PROBE = '''
from rf_jax import probes, tasks
from rf_jax.greedy import Item
from rf_jax.tasks import Example


@probes.register("doubled_copy")
class DoubledCopy(probes.Probe):
  """Copy prompts with every letter doubled: does copying survive a change in shape?"""
  metrics = ("doubled_copy",)

  def items(self, ctx):
    copy = tasks.get("copy")
    out = []
    for level in (1, 2):
      for i in range(ctx.n_per):
        s = tasks.make_example(copy, ctx.seed + 7, i, level).answer
        d = "".join(c + c for c in s)
        out.append(Item((level,), Example("copy:" + d, d), copy.score))
    return out

  def summarize(self, ctx, results):
    return {"by_length": {str(k[0]): r["exact"] for k, r in sorted(results.items())},
            "mean": sum(r["exact"] for r in results.values()) / len(results)}

  def headline(self, section):
    return {"doubled_copy": section["mean"]}

  def table(self, section):
    return ["doubled copy: " + " ".join(f"L{k}:{v:.2f}" for k, v in section["by_length"].items())]

  def panels(self, section):
    levels = sorted(section["by_length"], key=int)
    return [probes.Panel("doubled copy", [int(k) for k in levels],
                         [section["by_length"][k] for k in levels])]
'''


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("run") / "w"
  config = load_config()
  config.data.tasks = ("copy", "add")
  config.train.update(steps=5, eval_every=0, eval_levels=(), checkpoint_every=0)
  run_on_one_device(config, workdir)
  return workdir


@pytest.mark.slow
def test_user_probe_file_is_reported_plotted_and_compared(run_dir, tmp_path, capsys,
                                                          monkeypatch):
  path = tmp_path / "my_probe.py"
  path.write_text(USER_PROBE)
  # The registration lasts for this test only: later tests see the built-in probes.
  monkeypatch.setattr(probes.REGISTRY, "_items", dict(probes.REGISTRY._items))
  monkeypatch.setitem(sys.modules, "rf_jax_user_my_probe", None)
  del sys.modules["rf_jax_user_my_probe"]
  other = tmp_path / "other"
  shutil.copytree(run_dir, other)
  args = [f"--workdir={run_dir}", f"--compare={other}", "--examples=2",
          "--probe_modules=" + str(path)]
  assert evaluate.main(args) == 0
  out = capsys.readouterr().out
  assert "doubled copy: L1:" in out  # its table line, for each run
  table = out.split("metric", 1)[1]  # the comparison of the two runs' headline metrics
  assert "doubled_copy" in table and "in_distribution" in table
  for w in (run_dir, other):
    rep = json.loads((w / "eval" / "step_5.json").read_text())
    section = rep["probes"]["doubled_copy"]
    assert set(section) == {"by_length", "mean"} and set(section["by_length"]) == {"1", "2"}
    assert 0 <= probes.headline(rep)["doubled_copy"] <= 1
  png = (run_dir / "eval" / "compare.png").read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n"
  reports = evaluate.compare([str(run_dir), str(other)], 2, probes="levels,doubled_copy")
  titles = evaluate.plot(reports, str(tmp_path / "p.png"))
  assert titles == ["copy", "add", "doubled copy"]
  assert [len(v) for v in evaluate.panels(reports).values()] == [2, 2, 2]  # one line per run
  assert list(probes.headline(reports[1])) == ["in_distribution", "out_of_distribution",
                                               "doubled_copy"]


def test_built_in_probes_only_outside_that_test():
  assert "doubled_copy" not in probes.names() and "rf_jax_user_my_probe" not in sys.modules
