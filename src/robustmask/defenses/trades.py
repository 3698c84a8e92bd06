"""TRADES: the clean/robust trade-off (Zhang et al. 2019)."""

from __future__ import annotations

from typing import Any

from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer


class TRADESTrainer(AdversarialTrainer):
    """Minimise ``CE(y, f(x)) + beta * KL(f(x) || f(x'))`` with x' the PGD maximiser of the KL term.

    Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, "Theoretically Principled Trade-off between
    Robustness and Accuracy", ICML 2019, https://arxiv.org/abs/1901.08573. The attack ascends the
    cross-entropy against the model's own clean probabilities, whose gradient is the gradient of
    KL(f(x) || f(x')); no true label enters it. Larger ``beta`` buys robustness with clean accuracy
    (1 to 6 in the paper; 6 for CIFAR-10).

    Args:
        eps: the training budget (L-inf).
        beta: weight of the robustness term.
        steps: PGD steps per update (10 in Zhang et al.).
        **kwargs: see `AdversarialTrainer`.

    Example::

        defended, history = TRADESTrainer(eps=8 / 255, beta=6.0, epochs=30).fit(model, (x, y))
    """

    def __init__(
        self,
        eps: float = 8 / 255,
        beta: float = 6.0,
        steps: int = 7,
        *,
        eps_ramp: int = 5,
        learning_rate: float | None = 1e-3,
        **kwargs: Any,
    ) -> None:
        attack = PGD(steps=steps, random_start=True)
        super().__init__(
            attack,
            eps,
            objective="trades",
            beta=beta,
            eps_ramp=eps_ramp,
            learning_rate=learning_rate,
            **kwargs,
        )
