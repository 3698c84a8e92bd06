"""The names `robustmask.cli.scan` still imports from here; each now lives in its one home.

Every command is its own module (`robustmask.cli.main.COMMANDS`); the options they share are in
`robustmask.cli.options`, the model and images they run on in `robustmask.cli._data`.
"""

from __future__ import annotations

from robustmask.cli._data import load_model
from robustmask.cli.options import add_model_options
from robustmask.cli.options import parse_params as _params

__all__ = ["_params", "add_model_options", "load_model"]
