"""The two layouts of the blocks' parameters, and conversion between them.

  unrolled  model.scan_layers=False: one subtree per layer, params["blocks"][i]
            (checkpoint names params/blocks/<i>/attn/wq)
  stacked   model.scan_layers=True: one subtree, every array with a leading layer axis
            (checkpoint names params/blocks/attn/wq, shape [n_layers, ...])

The same parameters either way (layer i of stacked is blocks[i] of unrolled), so a
checkpoint of one layout loads into the other (`rf_jax.load`, `init_from`) by stacking or
slicing; resuming a run in the other layout is refused with a hint (`layout_hint`).
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp

_LAYER_NAME = re.compile(r"^(.*(?:^|/)blocks/)(\d+)/(.*)$")  # prefix, layer, rest


def is_stacked(params) -> bool:
  """Whether a params tree (nested dicts) holds stacked blocks; False without blocks."""
  blocks = params.get("blocks") or {}
  return bool(blocks) and not all(str(k).isdigit() for k in blocks)


def stack(params: dict) -> dict:
  """Unrolled -> stacked: layer i becomes index i of every block array."""
  blocks = params["blocks"]
  layers = [blocks[k] for k in sorted(blocks, key=int)]
  return {**params, "blocks": jax.tree.map(lambda *a: jnp.stack(a), *layers)}


def unstack(params: dict) -> dict:
  """Stacked -> unrolled: {0: layer 0, 1: layer 1, ...} (integer keys, as nnx.List has)."""
  blocks = params["blocks"]
  n = jax.tree.leaves(blocks)[0].shape[0]
  return {**params, "blocks": {i: jax.tree.map(lambda a, i=i: a[i], blocks) for i in range(n)}}


def convert(params: dict, stacked: bool) -> dict:
  """`params` in the layout asked for (unchanged if already in it)."""
  if not params.get("blocks") or is_stacked(params) == stacked:
    return params
  return stack(params) if stacked else unstack(params)


def names_stacked(names) -> bool | None:
  """The layout of checkpoint array names: True stacked, False unrolled, None no blocks."""
  found = None
  for name in names:
    parts = name.split("/")
    if "blocks" in parts[:-1]:
      found = not parts[parts.index("blocks") + 1].isdigit()
      break
  return found


def shapes_as(stored: dict[str, tuple], stacked: bool) -> dict[str, tuple]:
  """Checkpoint name -> shape, renamed and reshaped as the other layout would store them."""
  if names_stacked(stored) in (None, stacked):
    return dict(stored)
  out = {}
  if stacked:
    layers: dict[str, list] = {}
    for name, shape in stored.items():
      m = _LAYER_NAME.match(name)
      if m is None:
        out[name] = shape
      else:
        layers.setdefault(m.group(1) + m.group(3), []).append(shape)
    out.update({name: (len(shapes), *shapes[0]) for name, shapes in layers.items()})
    return out
  for name, shape in stored.items():
    parts = name.split("/")
    if "blocks" not in parts[:-1]:
      out[name] = shape
      continue
    cut = parts.index("blocks") + 1
    for i in range(shape[0]):
      out["/".join(parts[:cut] + [str(i)] + parts[cut:])] = tuple(shape[1:])
  return out


def layout_hint(stored_names, wanted_names) -> str:
  """'' if both name sets have one layout, else what to set to use the checkpoint's."""
  have, want = names_stacked(stored_names), names_stacked(wanted_names)
  if have is None or want is None or have == want:
    return ""
  kind = "stacked (model.scan_layers=True)" if have else "unrolled (model.scan_layers=False)"
  return (f"the checkpoint's layers are {kind}: set --config.model.scan_layers={have} to "
          "resume it (rf_jax.load and init_from read either layout)")
