"""The generic adapter: any evasion attack of IBM's Adversarial Robustness Toolbox as a robustmask `Attack`.

Nicolae et al., "Adversarial Robustness Toolbox v1.0.0", 2018, https://arxiv.org/abs/1807.01069.

`ARTAttack` builds the ART estimator from a Keras model itself (`estimator.py`), once per model (held
weakly: the cache never keeps a model alive), maps robustmask's ``eps`` and ``norm`` (the budget and
its threat model) onto the ART parameters that mean them, and returns NumPy arrays of x's shape and
dtype, like every robustmask attack.

What ART sees of the model
--------------------------
ART gets a view of the model that outputs **log-probabilities**, whatever the model ends in (softmax,
logits, a single sigmoid unit), and computes its loss with
``keras.losses.CategoricalCrossentropy(from_logits=True)``. Log-probabilities are logits (softmax of
them gives back the probabilities) and differ from the model's own logits by one constant per image, so

* the cross-entropy, its gradient, and hence FGSM/BIM/PGD are exactly those of the native attacks
  (which use the same `robustmask.modelinfo.log_probabilities`), with no 1e-7 probability clipping
  that zeroes the gradient on confidently classified images of a softmax model;
* attacks that work on logit *differences* -- DeepFool, Carlini & Wagner, the DLR loss of AutoPGD,
  Square's margin -- see exactly the logit differences of the model, as their papers assume, even
  for a softmax model (Keras 3 keeps the logits behind a softmax layer; see `modelinfo`);
* single-unit (sigmoid) binary models appear to ART as ordinary 2-class models.

The few ART attacks that read the outputs as probabilities (NewtonFool, VirtualAdversarialMethod) get
the probabilities instead (``ARTAttack(..., outputs="probabilities")``).

Black-box attacks (`needs_gradients = False`) get only an ART ``BlackBoxClassifierNeuralNetwork``
over a predict function that returns NumPy arrays (no gradient can flow through it) and counts the
images it is asked about: ``attack.queries``.

ART attacks are not graph-safe (``graph_safe = False``): `generate` runs eagerly through NumPy and
refuses to run inside a tf.function.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import tensorflow as tf

from robustmask.attacks.art.estimator import LOSSES, OUTPUTS, _input_shape, _predict_function, art_estimator
from robustmask.attacks import norms
from robustmask.attacks.base import Attack
from robustmask.attacks.whole_set import WholeSetCall
from robustmask._validation import check_positive_number
from robustmask.errors import AttackError
from robustmask.modelinfo import ModelInfo

if TYPE_CHECKING:  # pragma: no cover - ART is imported when an attack is built
    from art.attacks.attack import EvasionAttack
    from art.estimators.estimator import BaseEstimator

    from robustmask._types import Clip, Epsilons, Images, Labels, Model

__all__ = ["ARTAttack", "LOSSES", "WholeSetAttack", "art_estimator"]

# ART attacks (by class name) that take one gradient step: ARTAttack("FastGradientMethod") is single-step.
SINGLE_STEP_ART_ATTACKS = frozenset({"FastGradientMethod"})
# ART attacks (by class name) that only query predictions: given a black-box estimator by default.
BLACK_BOX_ART_ATTACKS = frozenset(
    {
        "SquareAttack",
        "HopSkipJump",
        "BoundaryAttack",
        "GeoDA",
        "SignOPTAttack",
        "SimBA",
        "ZooAttack",
        "PixelAttack",
        "ThresholdAttack",
    }
)

# ART attacks that read the estimator's outputs as probabilities: they see probabilities, not
# log-probabilities (VirtualAdversarialMethod refuses anything else).
PROBABILITY_ART_ATTACKS = frozenset({"NewtonFool", "VirtualAdversarialMethod"})


# ---------------------------------------------------------------------------------------------- the adapter
class ARTAttack(Attack):
    """Any ART evasion attack as a robustmask `Attack`: ``ARTAttack(art_attack_class, **params)``.

    Nicolae et al., "Adversarial Robustness Toolbox v1.0.0", https://arxiv.org/abs/1807.01069.

    ``params`` go to the ART attack's constructor (checked against its signature); the estimator is
    built from the Keras model at call time. How ``eps`` reaches ART:

    * the ART attack has an ``eps`` parameter (FGSM, BIM, PGD, MI-FGSM, AutoPGD, Square, universal
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

    def __init__(
        self,
        art_attack_class: type[EvasionAttack] | str,
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
        self.art_class = _resolve_art_class(art_attack_class)
        self._signature = _art_parameters(self.art_class)
        self.art_params = dict(params)
        self._check_params()

        self._resolve_capabilities(black_box)
        if outputs is None:
            outputs = (
                "probabilities" if self.art_class.__name__ in PROBABILITY_ART_ATTACKS else "log_probabilities"
            )
        if outputs not in OUTPUTS:
            raise AttackError(f"{self.name}: outputs must be one of {', '.join(OUTPUTS)}, got {outputs!r}")
        self.outputs = outputs
        self.queries: int | None = None if self.needs_gradients else 0

        self.rel_stepsize = check_positive_number(
            rel_stepsize, "rel_stepsize", allow_none=True, error=AttackError
        )
        self.abs_stepsize = check_positive_number(
            abs_stepsize, "abs_stepsize", allow_none=True, error=AttackError
        )
        if self.rel_stepsize is None and self.abs_stepsize is None and "eps_step" in self._signature:
            self.rel_stepsize = _art_default_ratio(self._signature)  # ART's own eps_step / eps

    # ------------------------------------------------------------------ construction checks
    def _resolve_capabilities(self, black_box: bool | None) -> None:
        # The generic adapter covers every kind of ART attack: its capabilities come from the ART class,
        # once, here (instance attributes that shadow the class defaults and never change afterwards).
        self.eps_bounded = "eps" in self._signature  # type: ignore[misc]  # shadows the ClassVar on purpose
        if black_box is None:
            black_box = not type(self).needs_gradients or self.art_class.__name__ in BLACK_BOX_ART_ATTACKS
        self.needs_gradients = not black_box  # type: ignore[misc]  # shadows the ClassVar on purpose
        if self.art_class.__name__ in SINGLE_STEP_ART_ATTACKS:
            self.single_step = True  # type: ignore[misc]  # shadows the ClassVar on purpose

    def _check_params(self) -> None:
        cls_name = self.art_class.__name__
        for reserved, use in (
            ("eps", "pass eps when calling the attack: attack(model, x, y, eps=...)"),
            ("eps_step", "use rel_stepsize (a fraction of eps) or abs_stepsize"),
            ("estimator", "the estimator is built from the Keras model"),
            ("classifier", "the estimator is built from the Keras model"),
        ):
            if reserved in self.art_params:
                raise AttackError(f"{self.name}: do not pass {reserved}= to {cls_name}; {use}")
        unknown = sorted(set(self.art_params) - set(self._signature))
        if unknown:
            raise AttackError(
                f"{self.name}: {cls_name} has no parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(self._signature)) or 'none'}"
            )
        for own in ("targeted", "norm"):
            if own in self.art_params:
                raise AttackError(
                    f"{self.name}: pass {own}= as robustmask's own argument, not among ART's params"
                )
        if self.targeted and "targeted" not in self._signature and not self._handles_targets():
            raise AttackError(f"{self.name}: {cls_name} has no targeted mode; use targeted=False")
        if "norm" not in self._signature and self.norm != norms.get(self.default_norm):
            raise AttackError(
                f"{self.name}: {cls_name} has no norm parameter and works in {norms.get(self.default_norm).label} "
                f"only; use norm={self.default_norm!r}"
            )

    def _handles_targets(self) -> bool:
        """Subclasses that implement targeting themselves (JSMA picks targets) return True."""
        return False

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
            self.queries = (self.queries or 0) + len(x)
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
        from art.estimators.classification import BlackBoxClassifierNeuralNetwork

        forward = _predict_function(model, info, self.outputs)

        def predict(batch: np.ndarray) -> np.ndarray:
            self.queries = (self.queries or 0) + len(batch)
            return forward(tf.convert_to_tensor(np.asarray(batch, np.float32))).numpy()

        # Square indexes clip_values; with clip=None it gets an unbounded box.
        clip_values = self.clip if self.clip is not None else (-np.inf, np.inf)
        return BlackBoxClassifierNeuralNetwork(
            predict,
            _input_shape(model, info),
            info.num_classes,
            channels_first=False,
            clip_values=clip_values,
        )

    def art_kwargs(self, eps: float | None) -> dict[str, Any]:
        """The ART constructor's keyword arguments for one eps (None for attacks without eps)."""
        kwargs = dict(self.art_params)
        sig = self._signature
        if "targeted" in sig:
            kwargs["targeted"] = self.targeted
        if "norm" in sig:
            kwargs["norm"] = self.norm.order
        if "verbose" in sig and "verbose" not in kwargs:
            kwargs["verbose"] = False
        if "batch_size" in sig and "batch_size" not in kwargs and self._art_batch_size is not None:
            kwargs["batch_size"] = self._art_batch_size
        if eps is not None and "eps" in sig:
            kwargs["eps"] = float(eps)
            if "eps_step" in sig:
                kwargs["eps_step"] = float(self.stepsize(eps))
        return kwargs

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
        adv = np.asarray(adv, np.float32).reshape(x.shape)
        broken = ~np.isfinite(adv).reshape(len(adv), -1).all(axis=1)
        if broken.any():  # ART 1.20's L2 Square divides by zero on images whose pixels sit at the clip bounds
            warnings.warn(
                f"{self.name}: ART's {self.art_class.__name__} returned NaN/inf for {int(broken.sum())} of "
                f"{len(adv)} images; they are returned unperturbed",
                RuntimeWarning,
                stacklevel=2,
            )
            adv[broken] = x[broken]
        adv = tf.convert_to_tensor(adv)
        return self.project(adv, tf.convert_to_tensor(x), 0.0 if eps is None else eps).numpy()


if TYPE_CHECKING:  # pragma: no cover - to mypy the mixin is the ARTAttack it is mixed into
    _WholeSetBase = ARTAttack
else:
    _WholeSetBase = object


class WholeSetAttack(WholeSetCall, _WholeSetBase):
    """Mixin for adapters that learn one thing from all the images of a call (a universal
    perturbation, a patch): the base class must not split the call into batches, while ART and the
    forward passes keep working in batches of ``batch_size``. Put it before `ARTAttack` in the bases."""

    def estimator(self, model: Model, info: ModelInfo) -> BaseEstimator:
        estimator = super().estimator(model, info)
        estimator.chunk_size = self._inner_batch_size or self.batch_size
        return estimator

    def art_kwargs(self, eps: float | None) -> dict[str, Any]:
        kwargs = super().art_kwargs(eps)
        if "batch_size" in self._signature and "batch_size" not in self.art_params:
            kwargs["batch_size"] = self._inner_batch_size or self.batch_size
        return kwargs


# ---------------------------------------------------------------------------------------------- helpers
def _resolve_art_class(art_attack_class: type[EvasionAttack] | str) -> type[EvasionAttack]:
    if isinstance(art_attack_class, str):
        import art.attacks.evasion as evasion

        cls = getattr(evasion, art_attack_class, None)
        if cls is None:
            raise AttackError(f"art.attacks.evasion has no attack called {art_attack_class!r}")
        return cls
    if not inspect.isclass(art_attack_class):
        raise AttackError(f"ARTAttack needs an ART evasion attack class, got {art_attack_class!r}")
    from art.attacks.attack import EvasionAttack

    if not issubclass(art_attack_class, EvasionAttack):
        raise AttackError(
            f"{art_attack_class.__name__} is not an ART evasion attack (art.attacks.EvasionAttack)"
        )
    return art_attack_class


def _art_parameters(cls: type[EvasionAttack]) -> dict[str, Any]:
    """The ART constructor's parameters (after the estimator) and their defaults."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return {p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _art_default_ratio(signature: dict[str, Any]) -> float:
    eps, step = signature.get("eps"), signature.get("eps_step")
    if isinstance(eps, (int, float)) and isinstance(step, (int, float)) and eps > 0 and step > 0:
        return float(step) / float(eps)
    return 1.0 / 3.0
