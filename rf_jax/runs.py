"""A finished or running training run on disk: its config, vocabulary and parameters."""
from __future__ import annotations

import dataclasses

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from rf_jax.checkpoint import ITEMS, absolute, check_shapes, stored_shapes
from rf_jax.errors import ConfigError
from rf_jax.layout import convert
from rf_jax.plugins import import_modules
from rf_jax.sharding import make_mesh
from rf_jax.train_state import mesh_rules, model_config
from rf_jax.train_state import abstract_model
from rf_jax.vocab import Vocab


@dataclasses.dataclass
class Run:
  workdir: str
  step: int
  config: ml_collections.ConfigDict
  vocab: Vocab
  meta: dict
  graphdef: object
  params: dict
  mesh: jax.sharding.Mesh


def _manager(workdir: str) -> ocp.CheckpointManager:
  directory = epath.Path(absolute(workdir)) / "checkpoints"
  if not directory.exists():
    raise ConfigError(f"no checkpoints under {workdir}; pass the --workdir of a training run")
  return ocp.CheckpointManager(directory, item_names=ITEMS)


def read_meta(workdir: str, step: int | None = None) -> tuple[int, dict]:
  mngr = _manager(workdir)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise ConfigError(f"no checkpoints under {workdir}/checkpoints")
  if step not in mngr.all_steps():
    raise ConfigError(f"no checkpoint at step {step} under {workdir}/checkpoints; "
                      f"available: {sorted(mngr.all_steps())}")
  if not (mngr.directory / str(step) / "meta").exists():
    raise ConfigError(f"checkpoint {mngr.directory / str(step)} has no metadata (meta item); "
                      "it was not written by rf_jax's trainer")
  meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  mngr.close()
  for key in ("config", "vocab"):
    if key not in (meta or {}):
      raise ConfigError(f"checkpoint {workdir} step {step}: metadata lacks {key!r}; "
                        "it was not written by rf_jax's trainer")
  return step, meta


def load_run(workdir: str, step: int | None = None, mesh=None,
             scan_layers: bool | None = None) -> Run:
  """Parameters only (no optimizer state), on `mesh` (default: data-parallel over all devices).

  `scan_layers`: the layer layout to return (rf_jax.layout); None keeps the checkpoint's.
  """
  workdir = absolute(workdir)
  step, meta = read_meta(workdir, step)
  config = ml_collections.ConfigDict(meta["config"])
  # The run's own task families (score_task, probes) register when their files are imported.
  import_modules(config.data.get("task_modules", ()),
                 f"data.task_modules of the run in {workdir}")
  vocab = Vocab.from_json(meta["vocab"])
  mesh = mesh or make_mesh((-1, 1, 1))
  graphdef, abs_params = abstract_model(model_config(config, vocab), mesh, mesh_rules(config))
  state_dir = epath.Path(workdir) / "checkpoints" / str(step) / "state"
  stored = {k: v for k, v in stored_shapes(state_dir).items() if k.startswith("params/")}
  check_shapes(stored, {"params": abs_params}, f"checkpoint {workdir} step {step}")
  item = {"params": abs_params}
  restored = ocp.PyTreeCheckpointer().restore(
      state_dir, args=ocp.args.PyTreeRestore(
          item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
          partial_restore=True))
  run = Run(str(workdir), step, config, vocab, meta, graphdef, restored["params"], mesh)
  return run if scan_layers is None else relayout(run, scan_layers)


def relayout(run: Run, scan_layers: bool) -> Run:
  """The run with its model's layers stacked (True) or unrolled (False); same parameters."""
  if bool(run.config.model.get("scan_layers", False)) == bool(scan_layers):
    return run
  config = ml_collections.ConfigDict(run.config.to_dict())
  config.model.scan_layers = bool(scan_layers)
  graphdef, abs_params = abstract_model(model_config(config, run.vocab), run.mesh,
                                        mesh_rules(config))
  shardings = jax.tree.map(lambda a: a.sharding, abs_params)
  with jax.set_mesh(run.mesh):
    params = jax.jit(lambda p: convert(p, bool(scan_layers)), out_shardings=shardings)(run.params)
  return dataclasses.replace(run, config=config, graphdef=graphdef, params=params)
