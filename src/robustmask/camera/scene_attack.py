"""End-to-end attack on a camera frame: perturb the pixels (whole frame, face boxes or mask region)
so that the classifier, seeing the detector's crops, changes its answer; then count what changed.

The attack is any registered gradient attack (`robustmask.GradientAttack`: FGSM, BIM, PGD, ...),
run by its own `run` on the frame through a `FrameView`; this module adds the region and the
before/after comparison.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from robustmask.camera.detection import FaceBox
from robustmask.camera.pipeline import Detection, FacePipeline, as_float_frame
from robustmask.errors import AttackError

if TYPE_CHECKING:  # pragma: no cover
    from robustmask.attacks.gradient_attack import GradientAttack

__all__ = [
    "REGIONS",
    "FaceMatch",
    "SceneAttack",
    "SceneComparison",
    "SceneResult",
    "compare_detections",
    "judge",
    "mask_region_box",
    "region_mask",
    "scene_gradient_attack",
]

Region = Literal["frame", "faces", "mask"]
Status = Literal["same", "changed", "lost", "gained"]
#: Where a scene attack may change pixels: the whole frame, the face boxes, or their mask regions.
REGIONS: tuple[Region, ...] = ("frame", "faces", "mask")


@dataclass(frozen=True)
class FaceMatch:
    """A face before and after the attack: ``same`` or ``changed`` class, ``lost`` (the detector no
    longer finds it) or ``gained`` (found only after the attack)."""

    before: Detection | None
    after: Detection | None
    status: Status


@dataclass(frozen=True)
class SceneComparison:
    """The faces of a frame before and after a perturbation, matched by box IoU."""

    matches: list[FaceMatch] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(match.status == status for match in self.matches)

    @property
    def faces(self) -> int:
        """Faces found before the perturbation."""
        return sum(match.before is not None for match in self.matches)

    @property
    def changed(self) -> int:
        return self.count("changed")

    @property
    def lost(self) -> int:
        return self.count("lost")

    @property
    def gained(self) -> int:
        return self.count("gained")


@dataclass(frozen=True)
class SceneResult:
    """What an attack did to one frame: the adversarial frame, the detections before and after, and
    their comparison."""

    frame: np.ndarray
    before: list[Detection]
    after: list[Detection]
    comparison: SceneComparison


def compare_detections(
    before: Sequence[Detection], after: Sequence[Detection], min_iou: float = 0.5
) -> SceneComparison:
    """Match faces before and after by box IoU (greedy, highest IoU first; a pair needs ``min_iou``).

    >>> compare_detections(clean, adversarial).changed     # faces whose class changed
    """
    pairs = sorted(
        ((before[i].box.iou(after[j].box), i, j) for i in range(len(before)) for j in range(len(after))),
        reverse=True,
    )
    partner: dict[int, int] = {}
    taken: set[int] = set()
    for iou, i, j in pairs:
        if iou >= min_iou and i not in partner and j not in taken:
            partner[i] = j
            taken.add(j)
    matches = []
    for i, face in enumerate(before):
        if i not in partner:
            matches.append(FaceMatch(face, None, "lost"))
            continue
        other = after[partner[i]]
        matches.append(FaceMatch(face, other, "same" if other.label == face.label else "changed"))
    matches += [FaceMatch(None, after[j], "gained") for j in range(len(after)) if j not in taken]
    return SceneComparison(matches)


def mask_region_box(box: FaceBox) -> FaceBox:
    """The mask region (nose to chin, cheek to cheek) of a face box: `robustmask.attacks.art.patch.patch_box`
    (``MASK_REGION``, the patch attack's place) of the box.

    >>> mask_region_box(FaceBox(100, 200, 100, 200))
    FaceBox(x=132, y=306, w=36, h=44, score=1.0)
    """
    from robustmask.attacks.art.patch import patch_box

    top, left, height, width = patch_box((box.h, box.w))
    return FaceBox(box.x + left, box.y + top, width, height, box.score)


def region_mask(frame_shape: Sequence[int], boxes: Sequence[FaceBox], region: Region = "frame") -> np.ndarray:
    """A float32 (H, W, 1) mask, 1 where the attack may change pixels: everywhere (``"frame"``), inside
    the face boxes (``"faces"``) or inside their mask regions (``"mask"``)."""
    if region not in REGIONS:
        raise AttackError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    height, width = int(frame_shape[0]), int(frame_shape[1])
    if region == "frame":
        return np.ones((height, width, 1), np.float32)
    mask = np.zeros((height, width, 1), np.float32)
    for box in boxes:
        x0, y0, x1, y1 = (mask_region_box(box) if region == "mask" else box).corners
        mask[y0:y1, x0:x1] = 1.0
    return mask


def judge(
    pipeline: FacePipeline, adversarial: np.ndarray, before: Sequence[Detection], frame_index: int = 0
) -> SceneResult:
    """Detect and classify again on the perturbed frame and compare with `before`."""
    after = pipeline(adversarial, frame_index)
    return SceneResult(adversarial, list(before), after, compare_detections(before, after))


class SceneAttack:
    """A gradient attack on a whole frame through a `FacePipeline`: the attack's own iteration, loss
    and step sizes, on the frame's pixels.

    `attack` is a `robustmask.GradientAttack` (FGSM, BIM, PGD, or a plug-in subclass) or its
    registered name, built with `params` (``SceneAttack("pgd", steps=10, seed=0)``). It runs on the
    frame through a `FrameView`: its loss (from the model's log-probabilities, see
    `robustmask.modelinfo`) summed over the detected faces, each labelled by its clean prediction,
    on crops taken by slicing and resizing, both differentiable. Pixels change only inside
    `region` (``"frame"``, ``"faces"``: the detector's boxes, ``"mask"``: the mask region of each
    box), by at most `eps` in the attack's norm, and stay in [0, 1]. The detector is not
    differentiated (OpenCV is not TensorFlow): the boxes are those of the clean frame; faces lost
    or gained are measured afterwards (`judge`). With `region="faces"`, crops without margin at the
    classifier's input size and one face, ``SceneAttack(PGD(seed=0))`` gives the crops that
    ``PGD(seed=0)(model, crops, labels, eps)`` gives.

    Args:
        attack: the attack or its name (``robustmask attacks`` lists them; default ``"pgd"``).
        eps: budget on [0, 1] pixels (default 0.008, about 2/255). An unbounded patch on the mask
            region is ``eps=1`` (then give more steps, e.g. ``steps=40``).
        region: where pixels may change.
        **params: the attack's parameters when `attack` is a name.

    >>> attack = SceneAttack("pgd", eps=4 / 255, region="faces", steps=10, seed=0)
    >>> result = attack(pipeline, frame)
    >>> result.comparison.changed, result.comparison.lost, result.comparison.gained
    """

    def __init__(
        self,
        attack: GradientAttack | str = "pgd",
        eps: float = 0.008,
        region: Region = "frame",
        **params: Any,
    ) -> None:
        self.attack = scene_gradient_attack(attack, **params)
        if region not in REGIONS:
            raise AttackError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
        self.eps, self.region = _budget(eps, self.attack), region

    def __repr__(self) -> str:
        return f"SceneAttack({self.attack!r}, eps={self.eps:g}, region={self.region!r})"

    def __call__(self, pipeline: FacePipeline, frame: np.ndarray, frame_index: int = 0) -> SceneResult:
        """Detect and classify, attack the faces found, then detect and classify the attacked frame."""
        image = as_float_frame(frame)
        before = pipeline(image, frame_index)
        return self.attack_detections(pipeline, image, before, frame_index)

    def attack_detections(
        self, pipeline: FacePipeline, frame: np.ndarray, before: Sequence[Detection], frame_index: int = 0
    ) -> SceneResult:
        """Attack the faces of `before` (the pipeline's detections on `frame`) and `judge` the result."""
        adversarial = self.perturb(pipeline, frame, [d.box for d in before], [d.label for d in before])
        return judge(pipeline, adversarial, before, frame_index)

    def perturb(
        self,
        pipeline: FacePipeline,
        frame: np.ndarray,
        boxes: Sequence[FaceBox],
        labels: Sequence[int] | None = None,
    ) -> np.ndarray:
        """The adversarial frame (float32 in [0, 1]) against the faces in `boxes` of their `labels`
        (default: the clean predictions; the targets of a targeted attack). A frame without faces
        comes back unchanged."""
        import tensorflow as tf

        from robustmask._validation import check_labels
        from robustmask.camera.frame_view import FrameView

        clean = as_float_frame(frame)
        if not boxes:
            return clean.copy()
        if labels is None and self.attack.targeted:
            raise AttackError(f"{self.attack.name} is targeted: pass the target classes as labels")
        view = FrameView(pipeline.model, pipeline.crops_of(boxes, clean.shape), pipeline.input_size)
        x = tf.constant(clean[None])
        crops = view.inputs(x).numpy()
        info = self.attack.model_info(view, crops)  # softmax or logits, checked on these crops
        if labels is None:
            labels = self.attack.predict_labels(pipeline.model, crops).tolist()
        y = tf.one_hot(
            check_labels(np.asarray(labels), len(boxes), info.num_classes, "labels"), info.num_classes
        )
        mask = region_mask(clean.shape, boxes, self.region)[None]
        return np.asarray(self.attack.perturb(view, x, y, self.eps, mask=mask))[0]


def _budget(eps: object, attack: GradientAttack) -> float:
    """`eps` as a float: > 0, and at most 1 for an L-inf budget on [0, 1] pixels."""
    linf = attack.norm.name == "inf"
    value = float(eps) if isinstance(eps, numbers.Real) and not isinstance(eps, bool) else math.nan
    if not 0 < value <= (1 if linf else math.inf):
        bound = (
            "an L-inf budget on [0, 1] pixels, in (0, 1]" if linf else f"an {attack.norm.label} budget > 0"
        )
        raise AttackError(f"eps is {bound}; got {eps!r}")
    return value


def scene_gradient_attack(attack: GradientAttack | str, **params: Any) -> GradientAttack:
    """`attack`, or the registered attack of that name built with `params`, checked for frames:
    a `robustmask.GradientAttack`, eps-bounded, clipping to [0, 1], one restart.

    >>> scene_gradient_attack("bim", steps=5)
    BIM(steps=5, rel_stepsize=0.25, norm='inf', targeted=False)
    """
    from robustmask.attacks import get
    from robustmask.attacks.gradient_attack import GradientAttack

    if isinstance(attack, str):
        built = get(attack, **params)
    elif params:
        raise AttackError(
            f"parameters {', '.join(params)} go to the attack's constructor, not to SceneAttack"
        )
    else:
        built = attack
    if not isinstance(built, GradientAttack) or not built.eps_bounded:
        raise AttackError(
            f"a scene attack is a native, eps-bounded gradient attack (a robustmask.GradientAttack: fgsm, "
            f"fgm, bim, pgd, ...); {attack!r} is {type(built).__name__}"
        )
    if built.clip != (0.0, 1.0):
        raise AttackError(f"frames are [0, 1] images: the attack must clip to (0, 1), not {built.clip}")
    if getattr(built, "restarts", 1) != 1:
        raise AttackError(
            "a scene attack keeps one frame, not the best restart of each face: give restarts=1"
        )
    return built
