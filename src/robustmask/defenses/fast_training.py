"""Fast adversarial training: FGSM from a random start (Wong et al. 2020), with a PGD guard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robustmask._validation import check_positive_int
from robustmask.attacks.pgd import PGD
from robustmask.defenses.adversarial_training import AdversarialTrainer
from robustmask.defenses.validation import RobustValidation, validation_attack

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.defenses._data import CleanBatches

#: A collapse: robust accuracy this many points (0-100) below the best epoch's.
COLLAPSE_DROP = 20.0


class FastAdversarialTrainer(AdversarialTrainer):
    """FGSM adversarial training from a random start, guarded against catastrophic overfitting.

    Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial training", ICLR 2020,
    https://arxiv.org/abs/2001.03994. Each copy is one signed-gradient step of ``1.25 * eps`` from
    a uniform random point of the eps ball, projected back: one gradient an update, about the cost
    of plain FGSM training. Single-step training can collapse (the model masks the one-step
    gradient and PGD accuracy falls to zero in an epoch), so after every epoch the guard, the robust
    validation every trainer runs (`RobustValidation`: PGD-10 accuracy, logged as
    ``val_robust_accuracy``), watches it on a held-out batch even without `validation_data`, and on
    collapse (20 points below the best epoch) stops and rolls the model back to its best epoch; a
    resumed run ends rolled back too (``guard=False`` turns the guard off).

    Args:
        eps: the training budget (L-inf).
        guard: measure PGD accuracy after every epoch and roll back on collapse.
        guard_size: without `validation_data`, the guard's images, held out of the training arrays
            (at most a fifth of them); with it, the guard attacks its first `validation_size` images.
        labels: ``"true"`` (default), ``"predicted"`` or ``"soft"`` labels for the copies.
        eps_ramp: epochs over which eps grows from 0 (default 3).
        **kwargs: the keyword arguments below.

    Keyword Args:
        objective (str): ``"ce"`` or ``"trades"`` (see `TRADESTrainer`).
        beta (float): the TRADES trade-off, with ``objective="trades"``.
        source (str): ``"current"`` (default) attacks the model as it trains; ``"original"`` the undefended
            model.
        layers (str): ``"trainable"`` (default) keeps frozen layers frozen; ``"all"`` unfreezes every layer.
        batchnorm (str | None): ``"train"`` (default) or ``"frozen"`` BatchNorm statistics.
        subset (float | int): fraction or count of training images used (default 1.0).
        epochs (int | None): passes over the data.
        batch_size (int): images per update, clean and copies together (default 32).
        learning_rate (float | None): the peak learning rate (default 1e-3 for Adam, 0.1 for SGD).
        warmup_epochs (int): epochs of linear learning-rate warm-up before `schedule` (default 0).
        optimizer (keras.optimizers.Optimizer | str | None): a Keras optimizer, ``"adam"`` (the preset's
            default), ``"sgd"`` or another name.
        schedule (str | None): ``"cosine"``, ``"onecycle"``, ``"piecewise"`` or ``"constant"``.
        weight_decay (float | None): decoupled weight decay (default 5e-4 for SGD, none for Adam).
        loss (keras.losses.Loss | str | Callable | None): an explicit Keras loss (default: cross-entropy).
        validation_size (int): validation images attacked after every epoch (default 256).
        keep_best (str): ``"robust"`` (default) ends with the most robust epoch's weights; ``"last"`` the
            last.
        strategy (tf.distribute.Strategy | None): a distribution strategy.
        seed (int): seeds the subset, the order of every epoch and the attack's random starts (default 0).

    After `fit`, ``trainer.guard`` holds the guard (its ``history``, ``best_epoch``, ``rolled_back``).

    Example::

        trainer = FastAdversarialTrainer(eps=8 / 255, epochs=15)
        defended, history = trainer.fit(model, (x, y))
        trainer.guard.history   # PGD accuracy (%) on the held-out batch, per epoch
    """

    default_optimizer = "adam"

    def __init__(
        self,
        eps: float = 8 / 255,
        *,
        guard: bool = True,
        guard_size: int = 128,
        labels: str = "true",
        eps_ramp: int = 3,
        **kwargs: Any,
    ) -> None:
        attack = PGD(steps=1, rel_stepsize=1.25, random_start=True)  # FGSM from a random start
        super().__init__(attack, eps, ratio=1.0, labels=labels, eps_ramp=eps_ramp, **kwargs)
        self.use_guard = bool(guard)
        self.guard_size = check_positive_int(guard_size, "guard_size")

    @property
    def guard(self) -> RobustValidation | None:
        """The guard of the last `fit` (None before it, or with ``guard=False``)."""
        return self.validation if self.use_guard else None

    def _holdout(self, validation_data: Any, train_data: Any) -> int:
        if not self.use_guard or validation_data is not None:
            return 0
        if isinstance(train_data, (tuple, list)) and len(train_data) == 2:
            return min(self.guard_size, max(1, len(train_data[0]) // 5))  # never most of a small set
        return self.guard_size  # a Dataset: CleanBatches asks for validation_data

    def _validation(self, clean: CleanBatches, validation_data: Any) -> RobustValidation | None:
        validation = super()._validation(clean, validation_data)
        if not self.use_guard:
            return validation
        if validation is None:
            assert clean.heldout is not None  # _holdout asked CleanBatches for guard_size >= 1 images
            validation = RobustValidation(
                None,
                validation_attack(self.attack, self.seed),
                self.eps[0],
                *clean.heldout,
                keep_best=self.keep_best == "robust",
                warn_rising=False,
            )
        validation.drop = COLLAPSE_DROP
        return validation
