"""The published numbers robustmask reproduces: Tables 4 and 5 of Sheikh & Zafar (2023).

Sheikh & Zafar, "Unlocking adversarial transferability: a security threat towards deep learning-based
surveillance systems via black box inference attack - a case study on face mask surveillance",
Multimedia Tools and Applications (2023), doi 10.1007/s11042-023-15405-x. Table 4: the undefended
MobileNetV2 under FGSM; Table 5: the model after Algorithm 2 (multi-epsilon adversarial training).

Example::

    from robustmask import paper
    paper.beside_paper(my_table4, paper.TABLE4)      # this run's rows with the paper's beside them
"""

from __future__ import annotations

import pandas as pd

__all__ = ["EPSILONS", "TABLE4", "TABLE5", "beside_paper"]

#: The paper's epsilons, the one place they are written: Table 4's attack budgets and Algorithm 2's
#: training budgets (Table 4's clean row, eps 0, is added by the Evaluator).
EPSILONS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009)
_EPSILONS = (0.0, *EPSILONS)


def _table(accuracy: tuple[float, ...], loss: tuple[float, ...]) -> pd.DataFrame:
    table = pd.DataFrame({"Epsilon": _EPSILONS, "Accuracy (%)": accuracy, "Loss": loss})
    table.attrs["norm"] = "L-inf"
    return table


TABLE4 = _table(
    (95.83, 75.12, 59.54, 45.20, 33.62, 26.59, 22.51, 18.52, 16.33, 14.53),
    (0.1339, 1.2533, 2.7042, 3.9079, 4.8393, 5.5416, 6.0692, 6.4622, 6.7565, 6.9780),
)
TABLE5 = _table(
    (93.79, 92.87, 92.79, 92.70, 92.62, 92.62, 92.38, 92.05, 91.97, 92.13),
    (0.5855, 0.5937, 0.6011, 0.6084, 0.6182, 0.6317, 0.6450, 0.6585, 0.6738, 0.6883),
)


def beside_paper(table: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """`table` (Epsilon, Accuracy (%), Loss, ...) with the paper's accuracy and loss at the same epsilons
    (empty where the paper has none, e.g. the quick preset's 4/255 to 8/255)."""
    key = table["Epsilon"].round(6)
    lookup = published.assign(Epsilon=published["Epsilon"].round(6)).set_index("Epsilon")
    out = table.copy()
    out["Paper accuracy (%)"] = key.map(lookup["Accuracy (%)"]).to_numpy()
    out["Paper loss"] = key.map(lookup["Loss"]).to_numpy()
    return out
