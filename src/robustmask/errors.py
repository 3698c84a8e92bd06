"""Errors robustmask raises for bad input.

Every message is one line that names the problem (and the file, where there is one) and says what
to do. They subclass ValueError so that callers who already catch ValueError keep working.
"""


class RobustmaskError(ValueError):
    """Base class of robustmask's input errors."""


class DataError(RobustmaskError):
    """A data folder, image file or array cannot be used as it is."""


class ModelError(RobustmaskError):
    """A model cannot be used as asked (wrong outputs, missing weights, unsupported file)."""


class AttackError(RobustmaskError):
    """An attack was built or called with arguments it cannot honour."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """One short line describing `exc`, for a one-line error of our own that explains it.

    Keras' own messages span many lines and quote whole configs: this keeps the type, and the line
    after Keras' "Exception encountered:" where there is one, else the first line, cut to `limit`.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    encountered = [line for line in lines if line.startswith("Exception encountered:")]
    text = encountered[-1][len("Exception encountered:") :].strip() if encountered else lines[0]
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}"
