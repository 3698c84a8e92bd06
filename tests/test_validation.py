"""The shared argument checks: what they accept, what they refuse, and how they say it."""

from __future__ import annotations

import numpy as np
import pytest

from robustmask._validation import check_positive_int, check_positive_number
from robustmask.errors import AttackError, RobustmaskError


@pytest.mark.parametrize("value", [1, 0.5, np.float32(2.5), np.int64(3), 1e-12])
def test_positive_numbers_pass_as_floats(value):
    result = check_positive_number(value, "rate")
    assert isinstance(result, float) and result == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, 0.0, -1, float("nan"), float("inf"), True, "1", None, [1.0]])
def test_anything_else_is_a_one_line_error_naming_the_argument(value):
    with pytest.raises(RobustmaskError, match=r"^rate must be a positive number, got ") as error:
        check_positive_number(value, "rate")
    assert len(str(error.value).splitlines()) == 1


def test_zero_none_and_the_error_class_are_options():
    assert check_positive_number(0, "weight", allow_zero=True) == 0.0
    with pytest.raises(RobustmaskError, match="non-negative number"):
        check_positive_number(-0.1, "weight", allow_zero=True)
    assert check_positive_number(None, "step", allow_none=True) is None
    with pytest.raises(AttackError, match="step must be a positive number or None"):
        check_positive_number(0, "step", allow_none=True, error=AttackError)


@pytest.mark.parametrize(
    "value, ok", [(1, True), (np.int32(4), True), (0, False), (1.0, False), (True, False)]
)
def test_positive_integers(value, ok):
    if ok:
        assert check_positive_int(value, "steps") == int(value)
    else:
        with pytest.raises(RobustmaskError, match="steps must be a positive integer"):
            check_positive_int(value, "steps")


def test_first_line_keeps_the_type_and_the_line_that_explains():
    from robustmask.errors import first_line

    keras_style = ValueError(
        "Layer 'dense' could not be deserialized.\n\nconfig={...}\n\n"
        "Exception encountered: Unknown activation: 'swishy'\n"
    )
    assert first_line(keras_style) == "ValueError: Unknown activation: 'swishy'"
    assert first_line(TypeError("bad\nsecond line")) == "TypeError: bad"
    assert first_line(KeyError()) == "KeyError"
    long = first_line(OSError("x" * 1000), limit=50)
    assert len(long) == len("OSError: ") + 50 and long.endswith("...")
