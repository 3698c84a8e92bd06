"""inspect_model's bookkeeping: what it reports besides the output kind (input shape, class count),
its cache (one detection per model and from_logits, checked again when a sample comes), and its
one-line errors. Written against mutmut's survivors in modelinfo.inspect_model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from robustmask.errors import ModelError
from robustmask.modelinfo import inspect_model

FEATURES = 12


class Counting(keras.Model):
    """A subclassed classifier (nothing declared: the sample decides) that counts its calls."""

    def __init__(self, classes: int = 3, softmax: bool = True) -> None:
        super().__init__()
        self.dense, self.softmax, self.calls = keras.layers.Dense(classes), softmax, 0

    def call(self, x):
        self.calls += 1
        z = self.dense(x)
        return tf.nn.softmax(z) if self.softmax else z


def sample(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (n, FEATURES)).astype(np.float32)


def test_the_declared_input_shape_and_the_class_count_are_reported():
    model = keras.Sequential([keras.Input((6, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(5)])
    info = inspect_model(model)
    assert info.input_shape == (6, 4, 3) and info.num_classes == 5 and not info.single_unit


def test_a_subclassed_models_class_count_comes_from_the_sample():
    for classes in (3, 7):  # not the sample's batch of 2 that the probe runs
        info = inspect_model(Counting(classes), sample=sample())
        assert info.num_classes == classes and info.output == "probabilities"


def test_one_detection_per_model_and_from_logits_and_a_sample_checks_a_decision_once():
    model = Counting(softmax=False)
    first = inspect_model(model, sample=sample())
    calls = model.calls
    assert first.output == "logits" and calls >= 1
    assert inspect_model(model, sample=sample()) is first and model.calls == calls  # cached
    assert inspect_model(model) is first and model.calls == calls
    # The user's word is cached apart: it does not replace the detection, nor does the detection it.
    assert inspect_model(model, from_logits=False, sample=sample()).output == "probabilities"
    assert inspect_model(model) is first and inspect_model(model, True, sample()).output == "logits"


def test_bad_models_are_one_line_errors_that_say_what_to_do():
    with pytest.raises(ModelError, match="expected a Keras model \\(or a callable classifier\\), got int"):
        inspect_model(42)
    with pytest.raises(ModelError) as error:
        inspect_model(Counting())
    assert str(error.value) == (
        "cannot tell the model's number of classes: build it (call it once) or pass sample inputs"
    )


def test_the_users_word_with_a_sample_is_final_the_model_is_not_called_again():
    """Given from_logits, the entry made with a sample counts as checked: later samples do not re-run
    the model (only the class count needed it)."""
    model = Counting(classes=5)
    info = inspect_model(model, from_logits=True, sample=sample())
    calls = model.calls
    assert info.output == "logits" and info.num_classes == 5 and calls >= 1
    assert inspect_model(model, from_logits=True, sample=sample()) is info and model.calls == calls


class Slotted:
    """A callable classifier that cannot be weakly referenced (``__slots__`` without ``__weakref__``)."""

    __slots__ = ("model",)

    def __init__(self, model: keras.Model) -> None:
        self.model = model

    def __call__(self, x, training=False):
        return self.model(x, training=training)


def test_a_classifier_that_cannot_be_weakly_referenced_is_inspected_every_time_without_a_cache():
    """Such a callable cannot key the per-model cache: it is inspected anew on every call (no error)."""
    counting = Counting(classes=4, softmax=False)
    slotted = Slotted(counting)
    first = inspect_model(slotted, sample=sample())
    calls = counting.calls
    again = inspect_model(slotted, sample=sample())
    assert first == again and first.num_classes == 4 and first.output == "logits"
    assert counting.calls > calls
