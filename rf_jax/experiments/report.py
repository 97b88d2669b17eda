"""The one report writer of the experiments: report.md, report.json and report.png under a root.

Roots may be local folders or remote (gs://...): every file goes through etils.epath.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from etils import epath


def over_seeds(per_seed: dict[str, list[dict]], metrics) -> dict:
  """arm -> metric -> {mean, std, values} from each arm's per-seed rows (missing values skipped)."""
  out = {}
  for arm, rows in per_seed.items():
    out[arm] = {}
    for m in metrics:
      vals = [r[m] for r in rows if r.get(m) is not None]
      out[arm][m] = {"mean": float(np.mean(vals)) if vals else None,
                     "std": float(np.std(vals)) if vals else None, "values": vals}
  return out


def read_json(path: str) -> dict:
  """The JSON object at `path`, or {} when there is none yet."""
  p = epath.Path(path)
  return json.loads(p.read_text()) if p.exists() else {}


def write_file(path: str, data: str | bytes) -> None:
  epath.Path(path).write_bytes(data if isinstance(data, bytes) else data.encode())


def write(root: str, markdown: str, data: Any, png: bytes | None = None,
          name: str = "report") -> dict[str, str]:
  """Writes <root>/<name>.md, .json and (given its bytes) .png; returns kind -> path."""
  epath.Path(root).mkdir(parents=True, exist_ok=True)
  paths = {"md": os.path.join(root, f"{name}.md"), "json": os.path.join(root, f"{name}.json")}
  write_file(paths["md"], markdown + "\n")
  write_file(paths["json"], json.dumps(data, indent=1))
  if png is not None:
    paths["png"] = os.path.join(root, f"{name}.png")
    write_file(paths["png"], png)
  return paths
