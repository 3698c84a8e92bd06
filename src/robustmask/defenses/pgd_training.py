"""PGD adversarial training (Madry et al. 2018)."""

from __future__ import annotations

from typing import Any

from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer


class PGDAdversarialTrainer(AdversarialTrainer):
    """Train on PGD examples of the current model: min over weights of max over the eps ball.

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018, https://arxiv.org/abs/1706.06083. Each update replaces the
    clean batch by its PGD copies (``ratio=1.0``), made with a random start and true labels against
    the model as it trains. The default eps ramp (Gowal et al. 2018's warm-up) and cosine-decayed
    Adam help small models that start from scratch or from a non-robust solution.

    Args:
        eps: the training budget (L-inf).
        steps: PGD steps per update (7 in Madry et al.'s CIFAR-10 set-up).
        rel_stepsize: PGD's step as a fraction of eps (2.5 / steps by default).
        ratio: the PGD copies' share of the loss (1.0: Madry; 0.5: Goodfellow's mixed loss).
        **kwargs: see `AdversarialTrainer` (epochs, batch_size, learning_rate, layers, ...).

    Example::

        defended, history = PGDAdversarialTrainer(eps=8 / 255, steps=7, epochs=30).fit(model, (x, y))
    """

    def __init__(
        self,
        eps: float = 8 / 255,
        steps: int = 7,
        rel_stepsize: float | None = None,
        *,
        ratio: float = 1.0,
        labels: str = "true",
        eps_ramp: int = 5,
        learning_rate: float | None = 1e-3,
        **kwargs: Any,
    ) -> None:
        attack = PGD(steps=steps, rel_stepsize=rel_stepsize, random_start=True)
        super().__init__(
            attack, eps, ratio=ratio, labels=labels, eps_ramp=eps_ramp, learning_rate=learning_rate, **kwargs
        )
