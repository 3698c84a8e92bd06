"""`robustmask compare`'s row matching: each row of one run meets its own row of the other, never a product."""

from __future__ import annotations

import pandas as pd
import pytest

from robustmask.cli.compare import side_by_side
from robustmask.errors import RobustmaskError


def _universal(rates: list[float]) -> pd.DataFrame:
    """universal's transfer table: the first column (Attack) repeats once per Set."""
    return pd.DataFrame(
        {
            "Attack": ["universal", "universal", "random", "random"],
            "Set": ["train", "unseen", "train", "unseen"],
            "Fooling rate (%)": rates,
        }
    )


def test_rows_labelled_by_two_text_columns_pair_up_one_to_one():
    merged = side_by_side({"a": _universal([60.0, 55.0, 5.0, 4.0]), "b": _universal([70.0, 65.0, 6.0, 3.0])})
    assert len(merged) == 4  # joining on Attack alone would give 8 (2 x 2 per attack)
    by_row = {
        (r["Attack"], r["Set"]): (r["Fooling rate (%) [a]"], r["Fooling rate (%) [b]"])
        for _, r in merged.iterrows()
    }
    assert by_row == {
        ("universal", "train"): (60.0, 70.0),
        ("universal", "unseen"): (55.0, 65.0),
        ("random", "train"): (5.0, 6.0),
        ("random", "unseen"): (4.0, 3.0),
    }


def test_a_label_that_still_repeats_pairs_rows_in_order():
    a = pd.DataFrame({"Epsilon": [0.01, 0.01, 0.02], "Accuracy (%)": [50.0, 40.0, 30.0]})
    b = pd.DataFrame({"Epsilon": [0.01, 0.01], "Accuracy (%)": [51.0, 41.0]})
    merged = side_by_side({"a": a, "b": b})
    assert merged["Accuracy (%) [a]"].tolist() == [50.0, 40.0, 30.0]
    assert merged["Accuracy (%) [b]"].tolist()[:2] == [51.0, 41.0]
    assert pd.isna(merged["Accuracy (%) [b]"].iloc[2])  # the union: a row only one run has
    assert list(merged.columns) == ["Epsilon", "Accuracy (%) [a]", "Accuracy (%) [b]"]


def test_a_measured_column_is_never_taken_for_a_label():
    a = pd.DataFrame({"Epsilon": [0.0, 0.0], "Accuracy (%)": [90.0, 80.0]})
    b = pd.DataFrame({"Epsilon": [0.0, 0.0], "Accuracy (%)": [80.0, 90.0]})
    merged = side_by_side({"a": a, "b": b})
    assert len(merged) == 2 and "Accuracy (%) [b]" in merged.columns  # not joined on Accuracy


def test_tables_that_start_differently_are_refused():
    with pytest.raises(RobustmaskError, match="start with different columns"):
        side_by_side({"a": pd.DataFrame({"Epsilon": [0.0]}), "b": pd.DataFrame({"Set": ["x"]})})
