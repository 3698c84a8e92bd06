"""The generic adapter: any evasion attack of IBM's Adversarial Robustness Toolbox as a robustmask `Attack`.

Nicolae et al., "Adversarial Robustness Toolbox v1.0.0", 2018, https://arxiv.org/abs/1807.01069.

`ARTAttack` builds the ART estimator from a Keras model itself (`estimator.py`), once per model (held
weakly: the cache never keeps a model alive), maps robustmask's ``eps`` and ``norm`` (the budget and
its threat model) onto the ART parameters that mean them, and returns NumPy arrays of x's shape and
dtype, like every robustmask attack.

What ART sees of the model (log-probabilities, which make its gradients exactly those of the native
attacks) is in `estimator.py`; the query-counting black box of black-box attacks in `queries.py`;
ART's classes, their parameters and robustmask's names for them in `parameters.py`.

ART attacks are not graph-safe (``graph_safe = False``): `generate` runs eagerly through NumPy and
refuses to run inside a tf.function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import tensorflow as tf

from robustmask.attacks.art._art_io import constructor_kwargs, finite_images
from robustmask.attacks.art.estimator import LOSSES, art_estimator
from robustmask.attacks.art.parameters import (
    art_capabilities,
    art_default_ratio,
    art_outputs,
    art_parameters,
    check_art_params,
    resolve_art_class,
)
from robustmask.attacks.art.queries import black_box_estimator
from robustmask.attacks import norms
from robustmask.attacks.base import Attack
from robustmask._validation import check_positive_number
from robustmask.errors import AttackError
from robustmask.modelinfo import ModelInfo

if TYPE_CHECKING:  # pragma: no cover - ART is imported when an attack is built
    from art.attacks.attack import EvasionAttack
    from art.estimators.estimator import BaseEstimator

    from robustmask._types import Clip, Epsilons, Images, Labels, Model

__all__ = ["ARTAttack", "LOSSES", "art_estimator"]


class ARTAttack(Attack):
    """Any ART evasion attack as a robustmask `Attack`: ``ARTAttack(art_attack_class, **params)``.

    Nicolae et al., "Adversarial Robustness Toolbox v1.0.0", https://arxiv.org/abs/1807.01069.

    ``params`` go to the ART attack's constructor (checked against its signature); the estimator is
    built from the Keras model at call time. How ``eps`` reaches ART:

    * the ART attack has an ``eps`` parameter (FGSM, BIM, PGD, MI-FGSM, ARTAutoPGD, Square, universal
      perturbation...): it is eps-bounded, ``attack(model, x, y, eps=...)`` sets ART's ``eps``, and, where
      ART also has ``eps_step``, ``eps_step = abs_stepsize`` if given, else ``rel_stepsize * eps``, else
      ART's own default ratio (its default ``eps_step / eps``, 0.1 / 0.3 for most attacks). ``norm``
      (robustmask's own argument: ``"inf"``, 2 or 1) becomes ART's ``norm``; an ART attack without a
      ``norm`` parameter works in L-inf only. The result is projected onto the eps ball of the norm.
    * the ART attack has no ``eps`` (DeepFool, Carlini & Wagner, JSMA, HopSkipJump, adversarial
      patch...): it chooses its own perturbation size, ``eps_bounded`` is False, and it is called
      without eps (an eps raises `AttackError`).

    ``targeted=True`` (``y`` = target classes, passed to ART one-hot) needs an ART attack with a
    ``targeted`` parameter. Black-box ART attacks (Square, HopSkipJump, Boundary, ...; or
    ``black_box=True``) only get the model's predictions; ``attack.queries`` then counts the images
    the model was asked about in the last call.

    Args:
        art_attack_class: an ART evasion attack class, or its name in ``art.attacks.evasion``.
        clip: valid input range, ART's ``clip_values``; ``None`` gives ART none.
        norm: the threat model, ART's ``norm`` (``None``: the adapter's ``default_norm``, L-inf for
            most; the distance the attack minimises for attacks without eps).
        from_logits: ``None`` detects softmax vs logits (see `Attack`).
        targeted: ``y`` holds target classes.
        batch_size: images per ART call and per forward pass, and ART's ``batch_size``; ``None``: 128,
            and the generic adapter leaves ART's own ``batch_size`` default (the named adapters pass 128).
        rel_stepsize: ART's ``eps_step`` as a fraction of eps.
        abs_stepsize: ART's ``eps_step`` in input units (overrides rel_stepsize).
        black_box: give ART only predictions; ``None`` decides from the attack class.
        outputs: what ART sees the model output: ``"log_probabilities"`` (default) or
            ``"probabilities"`` (default for NewtonFool and VirtualAdversarialMethod, which need them).
        loss: not supported (ART attacks use their own loss): anything but None raises `AttackError`.
        **params: the ART attack's own parameters (``max_iter=10``, ``num_random_init=1``...).

    Example::

        from art.attacks.evasion import ElasticNet, FastGradientMethod
        fgm = robustmask.attacks.ARTAttack(FastGradientMethod)
        x_adv = fgm(model, x_test, y_test, eps=0.004)
        ead = robustmask.attacks.ARTAttack("ElasticNet", max_iter=20)   # chooses its own size
        x_adv = ead(model, x_test, y_test)
    """

    eps_bounded: ClassVar[bool] = True
    needs_gradients: ClassVar[bool] = True
    graph_safe: ClassVar[bool] = False
    # The norm when none is given: for an attack without ART's norm parameter, the only one it has.
    default_norm: ClassVar[str] = "inf"
    # True for adapters that pick the targets themselves (JSMA): targeted=True needs no targeted ART class.
    picks_targets: ClassVar[bool] = False

    def __init__(
        self,
        art_attack_class: type[EvasionAttack] | str,
        /,
        *,
        clip: Clip = (0.0, 1.0),
        norm: str | float | norms.Norm | None = None,
        from_logits: bool | None = None,
        targeted: bool = False,
        batch_size: int | None = None,
        rel_stepsize: float | None = None,
        abs_stepsize: float | None = None,
        black_box: bool | None = None,
        outputs: str | None = None,
        loss: object = None,
        **params: Any,
    ) -> None:
        if loss is not None:
            raise AttackError(
                f"{type(self).__name__}: ART attacks use their own loss; loss= is not supported"
            )
        super().__init__(
            clip=clip,
            norm=self.default_norm if norm is None else norm,
            from_logits=from_logits,
            targeted=targeted,
            batch_size=128 if batch_size is None else batch_size,
        )
        # ART's own batch_size: the named adapters share robustmask's; the generic adapter leaves ART's
        # default alone unless batch_size is given (some attacks, ZOO, want their small default).
        self._art_batch_size = (
            batch_size if batch_size is not None or type(self) is ARTAttack else self.batch_size
        )
        self.art_class = resolve_art_class(art_attack_class)
        self._signature = art_parameters(self.art_class)
        self.art_params = dict(params)
        art_targets = targeted and not self.picks_targets  # the ART class must have a targeted mode
        check_art_params(self.name, self.art_class, params, art_targets, self.norm, self.default_norm)

        # The generic adapter covers every kind of ART attack: its capabilities come from the ART class,
        # once, here (instance attributes that shadow the class defaults and never change afterwards).
        eps_bounded, needs_gradients, single_step = art_capabilities(
            self.art_class, black_box, type(self).needs_gradients
        )
        self.eps_bounded = eps_bounded  # type: ignore[misc]  # shadows the ClassVar on purpose
        self.needs_gradients = needs_gradients  # type: ignore[misc]  # shadows the ClassVar on purpose
        self.single_step = self.single_step or single_step  # type: ignore[misc]  # shadows the ClassVar
        self.outputs = art_outputs(self.name, self.art_class, outputs)
        self.queries: int | None = None if self.needs_gradients else 0

        self.rel_stepsize = check_positive_number(
            rel_stepsize, "rel_stepsize", allow_none=True, error=AttackError
        )
        self.abs_stepsize = check_positive_number(
            abs_stepsize, "abs_stepsize", allow_none=True, error=AttackError
        )
        if self.rel_stepsize is None and self.abs_stepsize is None and "eps_step" in self._signature:
            self.rel_stepsize = art_default_ratio(self._signature)  # ART's own eps_step / eps

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.art_params.items())
        sep = ", " if params else ""
        return (
            f"{self.name}({self.art_class.__name__}{sep}{params}, clip={self.clip}, norm={self.norm.name!r}, "
            f"targeted={self.targeted})"
        )

    # ------------------------------------------------------------------ robustmask entry points
    def __call__(
        self, model: Model, x: Images, y: Labels | None = None, eps: Epsilons | None = None
    ) -> np.ndarray:
        if not self.needs_gradients:
            self.queries = 0
        return super().__call__(model, x, y, eps)

    def predict_labels(self, model: Model, x: np.ndarray) -> np.ndarray:
        # The base asks the model for labels when y is None: for a black-box attack those are queries too.
        if not self.needs_gradients:
            self._count_queries(len(x))
        return super().predict_labels(model, x)

    def generate(
        self,
        model: Model,
        x: tf.Tensor | np.ndarray,
        y: tf.Tensor | np.ndarray,
        epsilons: Sequence[float] | tf.Tensor,
    ) -> tf.Tensor:
        """Adversarial batches for every epsilon: a (len(epsilons), batch, ...) float32 tensor. Eager only."""
        if not tf.executing_eagerly():
            raise AttackError(
                f"{self.name} is an ART attack: it runs through NumPy and is not graph-safe, so it cannot run "
                "inside a tf.function or a train_step; use a native attack (FGSM, BIM, PGD) there"
            )
        x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float32)
        y = np.asarray(y.numpy() if hasattr(y, "numpy") else y, np.float32)
        epsilons = [float(e) for e in np.reshape(np.asarray(epsilons, np.float64), [-1])]
        info = self.model_info(model, x)
        if info.input_shape is None or any(d is None for d in info.input_shape):
            info = ModelInfo(info.num_classes, info.output, info.single_unit, tuple(x.shape[1:]))
        self.check_model(model, info)

        if not self.eps_bounded:  # run once; the same images for every eps
            adv = self._finish(self.run_art(model, info, x, y, None), x, None)
            return tf.convert_to_tensor(np.broadcast_to(adv[None], (len(epsilons),) + adv.shape).copy())
        out = np.empty((len(epsilons),) + x.shape, np.float32)
        for i, eps in enumerate(epsilons):
            out[i] = x if eps == 0 else self._finish(self.run_art(model, info, x, y, eps), x, eps)
        return tf.convert_to_tensor(out)

    # ------------------------------------------------------------------ hooks for the named adapters
    def check_model(self, model: Model, info: ModelInfo) -> None:
        """Refuse a model the attack cannot work on (raise AttackError). Called before each run."""

    def estimator(self, model: Model, info: ModelInfo) -> BaseEstimator:
        """The ART estimator the attack gets: white-box (cached) or a query-counting black box."""
        if self.needs_gradients:
            estimator = art_estimator(model, info, self.clip, outputs=self.outputs)
            estimator.chunk_size = self.batch_size
            return estimator
        return black_box_estimator(model, info, self.clip, self.outputs, self._count_queries)

    def _count_queries(self, images: int) -> None:
        self.queries = (self.queries or 0) + images

    def art_kwargs(self, eps: float | None) -> dict[str, Any]:
        """The ART constructor's keyword arguments for one eps (None for attacks without eps)."""
        sig, eps_step = self._signature, None
        if eps is not None and "eps" in sig and "eps_step" in sig:
            eps_step = float(self.stepsize(eps))
        return constructor_kwargs(
            sig,
            self.art_params,
            targeted=self.targeted,
            norm=self.norm.order,
            batch_size=self._art_batch_size,
            eps=eps,
            eps_step=eps_step,
        )

    def stepsize(self, eps: float) -> float:
        """ART's eps_step for this eps: abs_stepsize, else rel_stepsize * eps."""
        if self.abs_stepsize is not None:
            return self.abs_stepsize
        # Set by __init__ wherever ART has an eps_step, the only attacks that are asked for one.
        return cast(float, self.rel_stepsize) * eps

    def art_labels(self, model: Model, info: ModelInfo, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The y ART gets: one-hot true labels (untargeted) or targets (targeted)."""
        return y

    def make_art_attack(self, estimator: BaseEstimator, eps: float | None) -> EvasionAttack:
        try:
            return self.art_class(estimator, **self.art_kwargs(eps))
        except (ValueError, TypeError) as error:
            raise AttackError(
                f"{self.name}: ART's {self.art_class.__name__} refused its parameters: {error}"
            ) from None

    def run_art(
        self, model: Model, info: ModelInfo, x: np.ndarray, y: np.ndarray, eps: float | None
    ) -> np.ndarray:
        """One ART run on a NumPy batch: returns the adversarial batch (NumPy)."""
        estimator = self.estimator(model, info)
        attack = self.make_art_attack(estimator, eps)
        adv = attack.generate(x=x, y=self.art_labels(model, info, x, y))
        if isinstance(adv, tuple):
            raise AttackError(
                f"{self.name}: ART's {self.art_class.__name__} returns {len(adv)} arrays (a patch?), not adversarial "
                "images; for patches use robustmask.attacks.AdversarialPatch"
            )
        self.after_run(attack, x, adv)
        return adv

    def after_run(self, art_attack: EvasionAttack, x: np.ndarray, adv: np.ndarray) -> None:
        """Keep what the ART attack learnt (a universal perturbation, a patch). Default: nothing."""

    def _finish(self, adv: np.ndarray, x: np.ndarray, eps: float | None) -> np.ndarray:
        # ART rounds and projects in its own way: robustmask's projection makes the guarantees hold.
        adv = tf.convert_to_tensor(finite_images(adv, x, f"{self.name}: ART's {self.art_class.__name__}"))
        return self.project(adv, tf.convert_to_tensor(x), 0.0 if eps is None else eps).numpy()
