"""A built-in English corpus that every machine with Python has: no download, no network.

`python_docs()` is the Python language reference (`pydoc_data.topics`) plus the
docstrings of the standard library, one document per topic or module. It is
human-written technical English, a few MB: enough for smoke runs and tests of the
phase-3 text pipeline. The result depends only on the Python installation, so it is
cached per process and on disk, keyed by the Python version.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import platform
import sysconfig
import tempfile

MIN_DOCSTRING_CHARS = 200  # shorter ones are mostly "Return self." boilerplate
SKIP_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3",
                       "turtledemo", "ensurepip", "__pycache__"})
CACHE_VERSION = 1  # bump when the extraction rules change, so old caches are ignored


def _cache_path() -> str:
  return os.path.join(os.path.expanduser("~"), ".cache", "rf_jax",
                      f"python_docs-{platform.python_version()}.json")


def _topics() -> list[str]:
  from pydoc_data.topics import topics
  return [topics[k] for k in sorted(topics)]


def _docstrings(tree: ast.Module) -> list[str]:
  """Module, class and function docstrings in source order (depth first)."""
  out = []

  def visit(node):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
      doc = ast.get_docstring(node, clean=True)
      if doc and len(doc) >= MIN_DOCSTRING_CHARS:
        out.append(doc)
    for child in ast.iter_child_nodes(node):
      visit(child)

  visit(tree)
  return out


def _stdlib_files() -> list[str]:
  root = sysconfig.get_paths()["stdlib"]
  files = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)  # sorted: walk order
    files += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
  return files


def _module_docs() -> list[str]:
  docs = []
  for path in _stdlib_files():
    try:
      with open(path, "rb") as f:
        tree = ast.parse(f.read(), path)  # bytes: ast honours the file's coding cookie
    except (SyntaxError, ValueError, OSError, RecursionError):
      continue  # e.g. deliberately broken files shipped for tooling
    parts = _docstrings(tree)
    if parts:
      docs.append("\n\n".join(parts))
  return docs


def build() -> list[str]:
  """The corpus from scratch (no caches)."""
  return _topics() + _module_docs()


def _read_cache(path: str) -> list[str] | None:
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
    if data.get("version") == CACHE_VERSION and isinstance(data.get("docs"), list):
      return data["docs"]
  except (OSError, ValueError, AttributeError):
    pass
  return None


def _write_cache(path: str, docs: list[str]) -> None:
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Write-then-rename: several processes of one run may build the cache at once.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      json.dump({"version": CACHE_VERSION, "docs": docs}, f)
    os.replace(tmp, path)
  except OSError:
    pass  # a read-only home only costs a rebuild next time


@functools.cache
def _cached() -> tuple[str, ...]:
  path = _cache_path()
  docs = _read_cache(path)
  if docs is None:
    docs = build()
    _write_cache(path, docs)
  return tuple(docs)


def python_docs() -> list[str]:
  """The built-in corpus: language-reference topics, then stdlib modules' docstrings."""
  return list(_cached())


def describe() -> str:
  """One line of provenance for logs and run metadata."""
  docs = _cached()
  n_topics = len(_topics())
  n_bytes = sum(len(d.encode("utf-8")) for d in docs)
  return (f"builtin:python_docs from Python {platform.python_version()}: {n_topics} "
          f"language-reference topics + {len(docs) - n_topics} stdlib modules' docstrings, "
          f"{len(docs)} documents, {n_bytes / 1e6:.2f} MB")
