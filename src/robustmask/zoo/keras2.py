"""Full Keras 2 HDF5 models under Keras 3: the stored config repaired, never code from the file run.

Many face-mask models in the wild are Keras 2 HDF5 files that Keras 3 refuses as they are (their
initializer configs carry a ``dtype`` key: "GlorotUniform could not be deserialized"), often with a
non-``.h5`` extension that ``keras.models.load_model`` rejects outright. :func:`load_legacy_h5`
loads any such file, patching the stored config if needed, always in Keras' safe mode (a ``Lambda``
layer's stored bytecode is refused unless ``safe_mode=False`` is passed).
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.errors import ModelError, first_line
from robustmask.zoo.h5 import check_h5_file, decode, weights_group

if TYPE_CHECKING:  # pragma: no cover - keras and h5py are imported where they are used
    import h5py
    import keras

__all__ = ["load_legacy_h5"]

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


def _model_from_config(
    config: dict[str, Any], custom_objects: dict[str, Any] | None, safe_mode: bool
) -> keras.Model:
    import keras

    try:
        from keras.src.legacy.saving import saving_options, saving_utils
        from keras.src.saving import serialization_lib

        with (
            saving_options.keras_option_scope(use_legacy_config=True),
            serialization_lib.SafeModeScope(safe_mode),
        ):
            return saving_utils.model_from_config(config, custom_objects=custom_objects)
    except ImportError:  # pragma: no cover - Keras internals moved
        return keras.models.model_from_json(json.dumps(config), custom_objects=custom_objects)


def _load_weights_into(model: keras.Model, f: h5py.File) -> None:
    from keras.src.legacy.saving import legacy_h5_format

    legacy_h5_format.load_weights_from_hdf5_group(weights_group(f), model)


def load_legacy_h5(
    path: str | os.PathLike, custom_objects: dict[str, Any] | None = None, *, safe_mode: bool = True
) -> keras.Model:
    """Load a full Keras model saved in HDF5 by Keras 2 (or 3), whatever its extension, uncompiled.

    First tries Keras' own HDF5 loader. If that fails (Keras 3 rejects Keras 2 configs: initializer
    configs with a ``dtype`` key, Keras-2-only layer arguments), the ``model_config`` JSON stored in
    the file's attributes is patched (those keys removed; then, up to 20 times, any keyword a layer
    reports as unexpected is removed from that layer class's configs), the model is rebuilt from it
    and the weights are loaded from the file in layer order.

    Args:
        path: the HDF5 file (``.h5``, ``.hdf5``, ``.model``, ...).
        custom_objects: passed to deserialization for custom layers / functions.
        safe_mode: True (default) refuses a ``Lambda`` layer whose Python bytecode is stored in the
            file: loading it would run code from the file. Pass False only for files you trust.

    Raises:
        ModelError: (one line) missing file, not HDF5, no ``model_config`` (a weights-only file),
            or a config/weights that still cannot be loaded.
    """
    import h5py

    p = check_h5_file(path, "model")
    with h5py.File(str(p), "r") as f:
        config = _stored_config(f, p)
        try:
            return _load_with_keras(f, custom_objects, safe_mode)
        except Exception as exc:  # fall through to the patched config
            first_error = exc
        model, last_error, dropped = _rebuilt(_patch_keras2_config(config), custom_objects, safe_mode)
        if model is None:
            if _refused_as_unsafe(last_error) or _refused_as_unsafe(first_error):
                raise ModelError(
                    f"{p} stores Python code (a Lambda layer); robustmask does not run code from a model "
                    "file unless asked: pass safe_mode=False (--unsafe) for a file you trust, or rebuild "
                    "the architecture in code and pass architecture= to load its weights by layer."
                )
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


def _stored_config(f: h5py.File, p: Path) -> dict[str, Any]:
    """The file's ``model_config`` attribute, parsed; a `ModelError` for a weights-only or broken file."""
    raw = f.attrs.get("model_config")
    if raw is None:
        raise ModelError(
            f"{p} holds weights only (no model_config attribute): build the architecture in code and "
            "pass it as robustmask.zoo.load_model(path, architecture=build) to set them by layer name."
        )
    try:
        return json.loads(decode(raw))
    except ValueError as exc:
        raise ModelError(f"{p}: its model_config attribute is not valid JSON ({first_line(exc)}).") from None


def _load_with_keras(f: h5py.File, custom_objects: dict[str, Any] | None, safe_mode: bool) -> keras.Model:
    """The model as Keras' own HDF5 loader reads it (it raises on configs Keras 3 refuses)."""
    from keras.src.legacy.saving import legacy_h5_format

    return _unwrap_single_io(
        legacy_h5_format.load_model_from_hdf5(
            f, custom_objects=custom_objects, compile=False, safe_mode=safe_mode
        )
    )


def _rebuilt(
    config: dict[str, Any], custom_objects: dict[str, Any] | None, safe_mode: bool
) -> tuple[keras.Model | None, BaseException | None, list[str]]:
    """The model rebuilt from `config`, up to 20 tries, each after removing the keyword a layer refused.

    Returns ``(model or None, the last error, the non-default settings removed)``; `config` is edited.
    """
    last_error: BaseException | None = None
    dropped: list[str] = []
    for _ in range(20):
        try:
            # Keras consumes (mutates) the config it deserialises: give it a copy.
            return _model_from_config(copy.deepcopy(config), custom_objects, safe_mode), last_error, dropped
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
    return None, last_error, dropped


def _refused_as_unsafe(error: BaseException | None) -> bool:
    """Whether Keras refused to deserialise code (a Lambda layer) because of safe mode."""
    return error is not None and "safe_mode" in str(error)


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
