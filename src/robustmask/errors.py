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
