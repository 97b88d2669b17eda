"""The shape of the code: small functions, no import cycles, no hidden imports, data modules
that only read data, and objectives chosen by the registry rather than by string compares."""
import ast
import pathlib

import pytest

import configs.phase1 as phase1
import configs.thesis as thesis
from rf_jax import config as config_lib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "rf_jax"
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, pathlib.Path]:
  """Dotted module name -> file, for every module of the package."""
  out = {}
  for path in sorted(PACKAGE.rglob("*.py")):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
      parts = parts[:-1]
    out[".".join(parts)] = path
  return out


MODULES = _modules()


def _target(node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str | None:
  """The package module an import statement loads, or None for third-party imports."""
  if isinstance(node, ast.Import):
    name = alias.name
  else:
    if node.level or not node.module or not node.module.startswith("rf_jax"):
      return None
    sub = f"{node.module}.{alias.name}"
    name = sub if sub in MODULES else node.module
  return name if name in MODULES else None


def _imports(tree: ast.AST, top_level: bool):
  """(line, module) of every rf_jax import, at module level or inside functions."""
  body = tree.body if top_level else [n for n in ast.walk(tree)
                                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
  nodes = body if top_level else [m for f in body for m in ast.walk(f)]
  for node in nodes:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      for alias in node.names:
        target = _target(node, alias)
        if target:
          yield node.lineno, target


def _trees():
  return {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def test_no_function_is_longer_than_a_screen():
  long = []
  for name, path in MODULES.items():
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        n = node.end_lineno - node.lineno + 1
        if n > MAX_FUNCTION_LINES:
          long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines)")
  assert not long, "functions longer than %d lines:\n%s" % (MAX_FUNCTION_LINES, "\n".join(long))


def test_no_function_local_imports_of_the_package():
  # `rf_jax.load` imports rf_jax.api on first use, so that `import rf_jax` stays cheap.
  local = [f"{MODULES[name].relative_to(PACKAGE.parent)}:{line} imports {target}"
           for name, tree in _trees().items() if name != "rf_jax"
           for line, target in _imports(tree, top_level=False)]
  assert not local, "\n".join(local)


def test_no_import_cycles():
  graph = {name: set() for name in MODULES}
  for name, tree in _trees().items():
    for _, target in _imports(tree, top_level=True):
      # A package's __init__ importing its own submodules is how registries fill; the
      # submodules import their siblings, not the package, so that is not a cycle.
      if target != name and not (target.startswith(name + ".") and name != "rf_jax"):
        graph[name].add(target)
  cycles, state = [], {}

  def visit(node, stack):
    state[node] = "open"
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
      elif nxt not in state:
        visit(nxt, stack + [nxt])
    state[node] = "done"

  for name in sorted(graph):
    if name not in state:
      visit(name, [name])
  assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("rf_jax.data")))
def test_data_modules_do_not_run_the_model(name):
  runs_model = {"rf_jax.model", "rf_jax.step", "rf_jax.sampling", "rf_jax.train_state"}
  tree = ast.parse(MODULES[name].read_text())
  imported = {t for _, t in _imports(tree, top_level=True)} | {
      t for _, t in _imports(tree, top_level=False)}
  third_party = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                      if isinstance(n, ast.ImportFrom) and n.module}
  assert not imported & runs_model and "flax" not in third_party, name


def test_objectives_are_not_chosen_by_string_compares():
  """Only the registry maps `objective.kind` to code."""
  offenders = []
  for name, path in MODULES.items():
    if name.startswith("rf_jax.objectives"):
      continue
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Compare):
        text = ast.unparse(node)
        if "kind" in text and any(f"'{k}'" in text for k in ("rl", "mixed", "next_token",
                                                             "schedule")):
          offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {text}")
  assert not offenders, "\n".join(offenders)


def _fields(cfg, prefix=""):
  out = set()
  for key, value in cfg.items():
    out |= _fields(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
  return out


PRESETS = ([("phase1", p) for p in ("tiny", "bench", "bench125m", "rl", "reward", "mixed")]
           + [("phase2", "tiny"), ("phase3", "tiny"), ("knowledge", "tiny"), ("thesis", "tiny")]
           + [("thesis", name) for name in thesis.SLICES])


@pytest.mark.parametrize("name,preset", PRESETS)
def test_presets_change_fields_and_never_add_one(name, preset):
  """A ConfigDict's update() adds a key it does not know, so a preset's typo, or a field
  set only by a preset, would pass silently and be refused on the command line."""
  assert set(phase1.PRESETS) == {p for n, p in PRESETS if n == "phase1"}
  base = _fields(config_lib.load(f"{name}.py"))
  assert _fields(config_lib.load(f"{name}.py:{preset}")) == base
