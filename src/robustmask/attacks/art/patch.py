"""Adversarial patch on the mask region of a face: a printable sticker that changes the prediction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import tensorflow as tf
from art.attacks.evasion import AdversarialPatchTensorFlowV2

from robustmask._deprecation import renamed_parameters
from robustmask._validation import check_images
from robustmask.attacks.art.adapter import ARTAttack
from robustmask.attacks.art.parameters import EPOCHS, check_steps
from robustmask.attacks.art.whole_set import WholeSetAttack
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from art.estimators.classification import TensorFlowV2Classifier

    from robustmask._types import Images, Model
    from robustmask.modelinfo import ModelInfo

__all__ = ["AdversarialPatch", "MASK_REGION", "patch_box"]

#: Where the mask sits in a face-mask image, as fractions of the image: centre (row, column) and size
#: (height, width). Nose to chin, cheek to cheek of a face centred in the picture, as in the Kaggle
#: "Sophisticated Face Mask Dataset" crops and `robustmask.datasets.synthetic_face_masks`.
MASK_REGION = {"center": (0.64, 0.5), "size": (0.22, 0.36)}


def patch_box(
    image_shape: Sequence[int],
    center: Sequence[float] = MASK_REGION["center"],
    size: Sequence[float] = MASK_REGION["size"],
) -> tuple[int, int, int, int]:
    """(top, left, height, width) in pixels of a rectangle at `center` and of `size` (fractions of the
    rows and columns, as in `MASK_REGION`) on an image of ``image_shape`` (rows, columns, ...): at
    least one pixel, at most the image, moved inside it. The one rule for `AdversarialPatch` and the
    camera's mask region (`robustmask.camera.mask_region_box`).

    >>> patch_box((100, 100))
    (53, 32, 22, 36)
    """
    rows, cols = int(image_shape[0]), int(image_shape[1])
    height = min(rows, max(1, round(size[0] * rows)))
    width = min(cols, max(1, round(size[1] * cols)))
    top = int(np.clip(math.floor(center[0] * rows - height / 2 + 0.5), 0, rows - height))
    left = int(np.clip(math.floor(center[1] * cols - width / 2 + 0.5), 0, cols - width))
    return top, left, height, width


class PlacedAdversarialPatch(AdversarialPatchTensorFlowV2):
    """ART's patch optimiser (loss, Adam/PGD steps, clipping); the patch is a rectangle pasted at
    ``box = (top, left, height, width)`` pixels, shifted at random by up to ``jitter`` pixels while
    it is optimised (so that it survives imprecise placement), exactly at ``box`` when applied."""

    def __init__(
        self,
        classifier: TensorFlowV2Classifier,
        box: Sequence[int] = (0, 0, 1, 1),
        jitter: int = 0,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        batch_size: int = 16,
        optimizer: str = "Adam",
        targeted: bool = False,
        verbose: bool = True,
    ) -> None:
        top, left, height, width = (int(v) for v in box)
        side = max(height, width)
        channels = classifier.input_shape[-1]
        # ART insists on a square patch; it is replaced by the rectangle right after.
        super().__init__(
            classifier,
            rotation_max=0.0,
            scale_min=0.5,
            scale_max=1.0,
            learning_rate=learning_rate,
            max_iter=max_iter,
            batch_size=batch_size,
            patch_shape=(side, side, channels),
            optimizer=optimizer,
            targeted=targeted,
            verbose=verbose,
        )
        self.box, self.jitter, self._jittering = (top, left, height, width), int(jitter), False
        self.patch_shape = (height, width, channels)
        low, high = (float(v) for v in self.estimator.clip_values)
        self._initial_value = np.full(self.patch_shape, (low + high) / 2.0, np.float32)
        self._patch = tf.Variable(
            self._initial_value, dtype=tf.float32, constraint=lambda p: tf.clip_by_value(p, low, high)
        )

    def generate(
        self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        self._jittering = self.jitter > 0
        try:
            return super().generate(x, y, **kwargs)
        finally:
            self._jittering = False

    def _get_circular_patch_mask(self, nb_samples: int, sharpness: int = 40) -> tf.Tensor:
        return tf.ones((nb_samples,) + tuple(self.patch_shape), tf.float32)

    def _random_overlay(self, images, patch, scale=None, mask=None):
        images = tf.convert_to_tensor(images)
        top, left, height, width = self.box
        rows, cols = int(images.shape[1]), int(images.shape[2])
        if self._jittering:
            top = int(np.clip(top + np.random.randint(-self.jitter, self.jitter + 1), 0, rows - height))
            left = int(np.clip(left + np.random.randint(-self.jitter, self.jitter + 1), 0, cols - width))
        paddings = [[top, rows - top - height], [left, cols - left - width], [0, 0]]
        padded = tf.pad(tf.cast(patch, images.dtype), paddings)[None]
        where = np.zeros((1, rows, cols, 1), np.float32)
        where[:, top : top + height, left : left + width] = 1.0
        where = tf.constant(where, images.dtype)
        return images * (1.0 - where) + padded * where


class AdversarialPatch(WholeSetAttack, ARTAttack):
    """Adversarial patch, ART's ``AdversarialPatchTensorFlowV2``, placed on the mask region of a face.

    Brown, Mane, Roy, Abadi & Gilmer, "Adversarial Patch", 2017, https://arxiv.org/abs/1712.09665. A
    patch (an image that could be printed and stuck on a face mask) is optimised over all the images of
    the call so that, pasted on them, it changes the prediction: away from each image's label
    (untargeted, default) or to the targets in ``y`` (``targeted=True``).

    Where it goes: a rectangle given as fractions of the image, ``center=(row, column)`` and
    ``size=(height, width)``. The default is the lower-centre of the image, where the mask sits on a
    centred face crop (`MASK_REGION`). ART's own version pastes a round patch at random places and
    scales; here it goes where the mask is, shifted by up to ``jitter`` pixels during optimisation.

    It changes pixels as much as it likes inside its rectangle and none outside, so it takes no eps
    (``eps_bounded = False``). After a call:

    * ``attack.patch``: the patch image, (height, width, channels), in the valid range;
    * ``attack.box``: its place in pixels, (top, left, height, width);
    * ``attack.apply(x)``: new images with the patch pasted on.

    Args:
        center: the patch's place (its centre) as fractions of the image's height and width.
        size: the patch's size as fractions of the image's height and width.
        learning_rate: Adam's step (for images in [0, 1]; ART's default of 5.0 is for [0, 255]).
        epochs: passes over the images (ART's ``max_iter``).
        jitter: random shift, in pixels, applied during optimisation.
        **kwargs: the keyword arguments below.

    Keyword Args:
        clip (tuple[float, float] | None): the valid input range, ART's ``clip_values``, default ``(0, 1)``.
        norm (str | int | None): ART's ``norm`` (``"inf"``, ``2`` or ``1``) where the ART attack has one;
            ``None``: the class's default.
        from_logits (bool | None): ``None`` (default) detects whether the model ends in softmax or outputs
            logits; True or False says which.
        targeted (bool): ``y`` holds target classes and the attack pushes towards them (default False).
        batch_size (int | None): images per ART call and forward pass, and ART's ``batch_size`` (default
            128).
        rel_stepsize (float | None): ART's ``eps_step`` as a fraction of eps (default: the rule above; unused
            without eps).
        abs_stepsize (float | None): ART's ``eps_step`` in input units, for every eps; overrides
            rel_stepsize.
        black_box (bool | None): give ART only the model's predictions; ``None`` (default) decides from the
            attack class.
        outputs (str | None): what ART sees the model output: ``"log_probabilities"`` or ``"probabilities"``;
            ``None`` picks.
        loss (None): not supported (ART attacks use their own loss): anything but None raises `AttackError`.
        **params (Any): any other parameter of the ART attack class, passed on unchanged (checked against its
            signature).

    Example::

        patch = robustmask.attacks.AdversarialPatch(epochs=200)
        x_adv = patch(model, x_train[:256], y_train[:256])
        x_test_adv = patch.apply(x_test)              # the same sticker on unseen faces
        keras.utils.save_img("patch.png", patch.patch)  # print it
    """

    eps_bounded = False

    @renamed_parameters(EPOCHS)
    def __init__(
        self,
        center: Sequence[float] = MASK_REGION["center"],
        size: Sequence[float] = MASK_REGION["size"],
        learning_rate: float = 0.1,
        epochs: int = 100,
        jitter: int = 0,
        **kwargs: Any,
    ) -> None:
        self.center = _fractions(center, "center")
        self.size = _fractions(size, "size")
        if any(s <= 0 for s in self.size):
            raise AttackError(f"AdversarialPatch: size fractions must be > 0, got {size!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, np.integer)) or jitter < 0:
            raise AttackError(f"AdversarialPatch: jitter is a number of pixels >= 0, got {jitter!r}")
        if kwargs.get("clip", (0.0, 1.0)) is None:
            raise AttackError(
                "AdversarialPatch needs a valid input range (clip): a patch must be a printable image"
            )
        super().__init__(
            PlacedAdversarialPatch,
            learning_rate=float(learning_rate),
            max_iter=check_steps(epochs, "epochs"),
            jitter=int(jitter),
            **kwargs,
        )
        self.box: tuple[int, int, int, int] | None = None
        self._box: tuple[int, int, int, int] | None = None
        self.patch: np.ndarray | None = None

    def box_for(self, image_shape: Sequence[int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) in pixels of the patch on images of ``image_shape`` (H, W, C)."""
        return patch_box(image_shape, self.center, self.size)

    def check_model(self, model: Model, info: ModelInfo) -> None:
        if len(info.input_shape or ()) != 3:
            raise AttackError(
                f"AdversarialPatch works on images (height, width, channels); the model takes {info.input_shape}"
            )

    def art_kwargs(self, eps: float | None) -> dict[str, Any]:
        kwargs = super().art_kwargs(eps)
        kwargs["box"] = self._box
        return kwargs

    def run_art(
        self, model: Model, info: ModelInfo, x: np.ndarray, y: np.ndarray, eps: float | None
    ) -> np.ndarray:
        self._box = self.box_for(x.shape[1:])
        estimator = self.estimator(model, info)
        attack = self.make_art_attack(estimator, eps)
        patch, _ = attack.generate(x=x, y=y, shuffle=True)
        self.box = self._box
        low, high = cast("tuple[float, float]", self.clip)  # __init__ refuses clip=None
        self.patch = np.clip(np.asarray(patch, np.float32), low, high)
        return self._paste(x, self.patch, self.box)

    def apply(self, x: Images) -> np.ndarray:
        """x with the patch pasted on (at the same fractions of the image); x's shape and dtype."""
        if self.patch is None:
            raise AttackError("AdversarialPatch.apply: call the attack on some images first")
        x_np = check_images(x, self.clip)
        if x_np.ndim != 4 or x_np.shape[-1] != self.patch.shape[-1]:
            raise AttackError(
                f"AdversarialPatch.apply: expected images (n, H, W, {self.patch.shape[-1]}), "
                f"got shape {x_np.shape}"
            )
        box = self.box_for(x_np.shape[1:])
        patch = self.patch
        if box[2:] != patch.shape[:2]:  # other image size: resize the patch to the same fractions
            patch = tf.image.resize(patch, box[2:], method="bilinear").numpy()
        out = self._paste(x_np.astype(np.float32), patch, box)
        return out.astype(x_np.dtype if x_np.dtype.kind == "f" else np.float32)

    @staticmethod
    def _paste(x, patch, box):
        top, left, height, width = box
        out = np.array(x, np.float32, copy=True)
        out[:, top : top + height, left : left + width] = patch
        return out


def _fractions(value, name):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise AttackError(
            f"AdversarialPatch: {name} must be two fractions (rows, columns), got {value!r}"
        ) from None
    for v in (a, b):
        if not (0.0 <= v <= 1.0):
            raise AttackError(f"AdversarialPatch: {name} fractions must be in [0, 1], got {value!r}")
    return a, b
