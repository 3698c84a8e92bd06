"""Exact recomputation of BatchNormalization moving statistics from data.

Why: a MobileNetV2 built with ``weights=None`` keeps its BatchNorm moving statistics at their initial
values (mean 0, variance 1). With a frozen (or never trained) base, its inference-mode features are
then degenerate and attacks "succeed" with zero perturbation. :func:`recalibrate_batchnorm` sets the
statistics to what the data actually produce.

Definition of "exact": after the call, for every BatchNormalization layer ``bn`` reached by the
forward pass, ``bn.moving_mean`` / ``bn.moving_variance`` equal the per-channel mean and the
population (biased, ``ddof=0``, as Keras uses) variance of ``bn``'s inputs over *all* of ``x``, where
the inputs are computed in inference mode with every upstream BatchNorm layer already recalibrated.
That is the fixed point an inference-mode model needs, and it is what one forward pass over all of
``x`` in training mode with ``momentum=0`` would give, minus that pass's side effects (Dropout and
other training-only behaviour stay off here).

How: each BatchNorm layer's ``call`` is wrapped (per instance, removed afterwards) so that it can
record the moments of its input.

* ``len(x) <= batch_size``: one inference-mode forward pass over all of ``x``; each BatchNorm layer,
  when reached, computes the moments of its whole input, stores them as its moving statistics and
  normalises with them, so downstream layers see recalibrated upstream layers. One pass in all.
* otherwise: the layers are recalibrated one at a time in the order the forward pass reaches them;
  for each layer, ``x`` is streamed in batches of ``batch_size`` and the pass is cut short right
  after that layer has recorded its input (Chan's parallel mean / M2 merge in float64). Memory stays
  at one batch; the cost is about (number of BatchNorm layers / 2) full passes over ``x``.

Both modes give the same statistics (up to float rounding). Layer attributes (``momentum``,
``trainable``) are never modified, so nothing needs restoring except the temporary call wrappers,
which are always removed (``finally``). Masks passed to BatchNorm are ignored (image models).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from robustmask._validation import check_positive_int
from robustmask.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - keras is imported where it is used
    import keras
    import numpy.typing as npt

__all__ = ["recalibrate_batchnorm", "batchnorm_layers"]


class _StopForward(Exception):
    """Raised inside a wrapped BatchNorm call to cut a forward pass short."""


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """All BatchNormalization layers of ``model``, nested models and layers included (no duplicates)."""
    import keras

    found: list[keras.layers.BatchNormalization] = []
    seen: set[int] = set()

    def visit(layer: keras.layers.Layer) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        for sub in getattr(layer, "layers", None) or []:
            visit(sub)
        # Custom layers that hold sub-layers as attributes (Keras 3 tracks them in _layers).
        for sub in getattr(layer, "_layers", None) or []:
            visit(sub)

    visit(model)
    return found


class _Moments:
    """Running per-channel mean and M2 (sum of squared deviations), float64, Chan's merge."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, values: np.ndarray, axes: tuple[int, ...]) -> None:
        values = np.asarray(values, dtype=np.float64)
        n = int(np.prod([values.shape[a] for a in axes])) if axes else 1
        if n == 0:
            return
        mean_b = values.mean(axis=axes)
        m2_b = ((values - np.expand_dims(mean_b, axes)) ** 2).sum(axis=axes) if axes else 0 * mean_b
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean_b, m2_b
            return
        total = self.count + n
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def variance(self) -> np.ndarray:
        assert self.m2 is not None
        return self.m2 / self.count


def _reduction_axes(layer: keras.layers.BatchNormalization, ndim: int) -> tuple[int, ...]:
    axis = layer.axis
    axes = [axis] if isinstance(axis, int) else list(axis)
    axes = [a % ndim for a in axes]
    return tuple(i for i in range(ndim) if i not in axes)


def _assign(layer: keras.layers.BatchNormalization, moments: _Moments) -> None:
    import keras

    assert moments.mean is not None  # as in `variance`: the layer's input was recorded
    shape = tuple(layer.moving_mean.shape)
    dtype = keras.backend.standardize_dtype(layer.moving_mean.dtype)
    layer.moving_mean.assign(np.reshape(moments.mean, shape).astype(dtype))
    layer.moving_variance.assign(np.reshape(moments.variance, shape).astype(dtype))


def _as_array(x: npt.ArrayLike) -> np.ndarray:
    if isinstance(x, (list, tuple)):
        raise ModelError(
            "recalibrate_batchnorm: x must be one array of model inputs (N, ...), not a list or tuple; "
            "pass the images only, without labels."
        )
    arr = np.asarray(x)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ModelError("recalibrate_batchnorm: x is empty; pass at least one input sample.")
    if not np.issubdtype(arr.dtype, np.number):
        raise ModelError(f"recalibrate_batchnorm: x must be numeric, got dtype {arr.dtype}.")
    return arr.astype(np.float32, copy=False) if arr.dtype != np.float32 else arr


def recalibrate_batchnorm(model: keras.Model, x: npt.ArrayLike, batch_size: int = 64) -> keras.Model:
    """Set every BatchNormalization layer's moving mean/variance to the exact statistics of ``x``.

    Args:
        model: a Keras model (BatchNorm layers inside nested models are included).
        x: model inputs, one array of shape ``(N, ...)`` in the range the model expects (for
            robustmask models, [0, 1] images). A ``tf.data.Dataset`` is not accepted: stack a
            sample of images into an array first.
        batch_size: memory bound. ``len(x) <= batch_size``: one forward pass; otherwise one layer
            at a time, streaming ``x`` in batches (see the module docstring). Same result.

    Returns:
        ``model`` (modified in place), for chaining.

    Raises:
        ModelError: bad ``x`` / ``batch_size``, or a model without any BatchNormalization layer.
    """
    check_positive_int(batch_size, "recalibrate_batchnorm: batch_size", error=ModelError)
    arr = _as_array(x)
    layers = batchnorm_layers(model)
    if not layers:
        raise ModelError(
            f"recalibrate_batchnorm: model {getattr(model, 'name', model)!r} has no BatchNormalization layer; "
            "nothing to recalibrate."
        )
    recorder = _Recorder()
    with _wrapped_calls(layers, recorder):
        if arr.shape[0] <= batch_size:
            done = _one_pass(model, arr, recorder)
        else:
            done = _layer_by_layer(model, arr, batch_size, recorder)
        if not done:
            raise ModelError(
                "recalibrate_batchnorm: the forward pass reached none of the model's BatchNormalization layers."
            )
    return model


class _Recorder:
    """What the wrapped BatchNorm calls do, by `mode`: "order" notes the order the pass reaches the
    layers in; "single" sets each layer reached to the moments of its whole input; "stream" adds the
    input of `target` to `moments` and cuts the pass short."""

    def __init__(self) -> None:
        self.mode = "order"
        self.target: keras.layers.BatchNormalization | None = None
        self.order: list[keras.layers.BatchNormalization] = []
        self.moments: Any = {}  # {layer: _Moments} in "single" mode, one _Moments in "stream" mode

    def wrap(
        self, layer: keras.layers.BatchNormalization, original: Callable[..., Any]
    ) -> Callable[..., Any]:
        def wrapped(inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
            if self.mode == "order":
                if all(layer is not other for other in self.order):
                    self.order.append(layer)
            elif self.mode == "single":
                values = np.asarray(inputs)
                mom = _Moments()
                mom.update(values, _reduction_axes(layer, values.ndim))
                if all(layer is not other for other in self.moments):
                    self.moments[layer] = mom
                    _assign(layer, mom)
            elif self.mode == "stream" and layer is self.target:
                values = np.asarray(inputs)
                self.moments.update(values, _reduction_axes(layer, values.ndim))
                raise _StopForward
            return original(inputs, training=False, mask=mask)

        return wrapped


@contextlib.contextmanager
def _wrapped_calls(layers: list[keras.layers.BatchNormalization], recorder: _Recorder) -> Iterator[None]:
    """Each layer's ``call`` wrapped by `recorder` (per instance) inside the block, always unwrapped after."""
    patched: list[tuple[keras.layers.BatchNormalization, bool, Callable[..., Any]]] = []
    try:
        for layer in layers:
            had_own = "call" in vars(layer)
            original = layer.call
            layer.call = recorder.wrap(layer, original)
            patched.append((layer, had_own, original))
        yield
    finally:
        for layer, had_own, original in patched:
            if had_own:
                layer.call = original
            else:
                try:
                    object.__delattr__(layer, "call")
                except AttributeError:  # pragma: no cover - defensive
                    pass


def _one_pass(model: keras.Model, arr: np.ndarray, recorder: _Recorder) -> list[Any]:
    """All of `arr` in one forward pass, each layer recalibrated when reached; the layers reached."""
    recorder.mode = "single"
    recorder.moments = {}
    model(arr, training=False)
    return list(recorder.moments)


def _layer_by_layer(model: keras.Model, arr: np.ndarray, batch_size: int, recorder: _Recorder) -> list[Any]:
    """One layer at a time, in the order the pass reaches them, `arr` streamed in batches; the layers."""
    recorder.mode = "order"
    model(arr[:1], training=False)
    done = list(recorder.order)
    for layer in done:
        recorder.mode = "stream"
        recorder.target = layer
        recorder.moments = _Moments()
        for start in range(0, arr.shape[0], batch_size):
            try:
                model(arr[start : start + batch_size], training=False)
            except _StopForward:
                pass
        _assign(layer, recorder.moments)
    return done
