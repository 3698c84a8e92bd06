"""A procedural face-mask data set: robustmask's embedded default data (nothing can be downloaded).

:func:`synthetic_face_masks` draws cartoon faces in the three classes of the Kaggle "Sophisticated
Face Mask Dataset" that the reference study used (Sheikh & Zafar 2023), with its sub-categories:

* ``with_mask`` -- the mask covers nose and mouth; ``simple`` or ``complex``;
* ``incorrect_mask`` -- the mask sits on the chin only (``mask_on_chin``) or over mouth and chin with
  the nose showing (``mask_on_mouth_chin``), half and half;
* ``without_mask`` -- no mask; ``simple`` or ``complex``.

"Complex" images carry what the paper calls complex: beards, long hair hanging past the face and a
hand over part of it; they come at the paper's ratios (with_mask 789 of 4,789, without_mask 746 of
4,746).

The images are made so that no single trivial cue gives the class away: mask colours include
skin-like and background-like colours, faces of every class wear scarves and gloves in mask-like
colours, backgrounds can be skin-coloured, and lighting, noise, face size, position and rotation
vary. What separates the classes is *where* a covering sits on the face, as in the real task; a
test checks that mean colour alone does not separate the classes while raw pixels do.

Everything is drawn with vectorised NumPy in relative (face) coordinates, so any size from 32 to
224 pixels works, and 3,000 images of 64 px take a few seconds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from robustmask.datasets.directory import CLASS_NAMES
from robustmask._io import write_atomically
from robustmask.errors import DataError, RobustmaskError

if TYPE_CHECKING:  # pragma: no cover - Pillow is imported where it is used
    from PIL import Image

__all__ = [
    "SUBCATEGORIES",
    "synthetic_face_masks",
    "write_synthetic_face_mask_directory",
]

#: Sub-categories per class, as in the Kaggle set's sub-folders.
SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "incorrect_mask": ("mask_on_chin", "mask_on_mouth_chin"),
    "with_mask": ("simple", "complex"),
    "without_mask": ("simple", "complex"),
}

# The paper's share of complex images (Kaggle set: 789 of 4,789 and 746 of 4,746).
_COMPLEX_SHARE = {"with_mask": 789 / 4789, "without_mask": 746 / 4746}

# Pixels rendered at once. Small chunks keep NumPy's temporaries on the malloc heap: large ones are
# mmap-ed and page-faulted afresh on every allocation, which cost more than the drawing itself.
_PIXELS_PER_CHUNK = 32768
_FILES_PER_FOLDER = 50  # images per nested ``part_XX`` folder in the written layout

_F = np.float32


def _palette(*colours: tuple[float, float, float]) -> np.ndarray:
    """A colour palette: an (n, 3) float32 table of RGB colours in [0, 1]."""
    return np.array(colours, _F)


# Colour palettes.
_SKIN_RAMP = _palette(
    (0.97, 0.83, 0.72),
    (0.90, 0.70, 0.56),
    (0.78, 0.56, 0.40),
    (0.62, 0.42, 0.28),
    (0.45, 0.29, 0.19),
    (0.30, 0.19, 0.12),
)
_HAIR = _palette(
    (0.07, 0.06, 0.05),
    (0.22, 0.14, 0.08),
    (0.42, 0.28, 0.15),
    (0.80, 0.66, 0.40),
    (0.58, 0.24, 0.10),
    (0.55, 0.55, 0.55),
    (0.85, 0.85, 0.83),
)
_HAIR_P = np.array([0.32, 0.26, 0.14, 0.1, 0.06, 0.07, 0.05])
_MASKS = _palette(
    (0.56, 0.76, 0.88),  # surgical blue
    (0.94, 0.94, 0.94),  # white
    (0.10, 0.10, 0.12),  # black
    (0.50, 0.50, 0.53),  # grey
    (0.15, 0.20, 0.42),  # navy
    (0.95, 0.72, 0.76),  # pink
    (0.45, 0.70, 0.55),  # mint
)
_IRIS = _palette((0.25, 0.15, 0.08), (0.10, 0.07, 0.05), (0.25, 0.45, 0.65), (0.30, 0.45, 0.25))


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


@overload
def synthetic_face_masks(
    n_per_class: int = ...,
    image_size: int = ...,
    seed: int | None = ...,
    return_subcategories: Literal[False] = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def synthetic_face_masks(
    n_per_class: int = ...,
    image_size: int = ...,
    seed: int | None = ...,
    *,
    return_subcategories: Literal[True],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def synthetic_face_masks(
    n_per_class: int = ..., image_size: int = ..., seed: int | None = ..., return_subcategories: bool = ...
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def synthetic_face_masks(
    n_per_class: int = 200,
    image_size: int = 64,
    seed: int | None = 0,
    return_subcategories: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``3 * n_per_class`` synthetic face images, ``n_per_class`` in each class.

    Args:
        n_per_class: images per class (the class balance is exact).
        image_size: side of the square images in pixels, 32 to 224 works well (any >= 8 runs).
        seed: the same seed gives identical arrays; another seed gives other images (``None``: fresh
            randomness each call).
        return_subcategories: also return each image's sub-category (see :data:`SUBCATEGORIES`).

    Returns:
        ``(x, y)`` or ``(x, y, subcategories)``: ``x`` float32 ``(N, image_size, image_size, 3)`` in
        [0, 1]; ``y`` int64 labels, label ``i`` meaning ``CLASS_NAMES[i]``, classes shuffled
        deterministically by ``seed``; ``subcategories`` an array of strings.
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    size = _check_int("image_size", image_size, 8)
    seq = np.random.SeedSequence(seed)
    param_seq, noise_seq = seq.spawn(2)
    rng = np.random.default_rng(param_seq)

    labels, subcats = _assign_labels(n_per_class, rng)
    p = _draw_params(labels, subcats, rng)
    n = len(labels)
    x = np.empty((n, size, size, 3), _F)
    chunk = max(1, min(256, _PIXELS_PER_CHUNK // (size * size)))
    chunk_seqs = noise_seq.spawn((n + chunk - 1) // chunk)
    for k, start in enumerate(range(0, n, chunk)):
        idx = slice(start, min(start + chunk, n))
        params = {name: value[idx] for name, value in p.items()}
        planes = _render(params, size, np.random.default_rng(chunk_seqs[k]))
        for c in range(3):  # channel by channel: much faster than one transposing copy
            x[idx, :, :, c] = planes[c]
    y = labels.astype(np.int64)
    if return_subcategories:
        return x, y, subcats
    return x, y


def write_synthetic_face_mask_directory(
    path: str | os.PathLike,
    n_per_class: int = 200,
    image_size: int = 64,
    seed: int | None = 0,
    overwrite: bool = False,
) -> Path:
    """Write :func:`synthetic_face_masks` images as PNG files in the Kaggle folder layout.

    The layout mirrors the "Sophisticated Face Mask Dataset": one folder per class, sub-folders per
    sub-category and a further nested level, ``path/<class>/<subcategory>/part_XX/img_NNNNN.png``.
    ``NNNNN`` is the image's 1-based index in the arrays :func:`synthetic_face_masks` returns for the
    same arguments; pixels are those values rounded to 8 bits.

    Each file is written atomically (a hidden temporary file in the same folder, then
    :func:`os.replace`), so a reader never sees half a PNG.

    Args:
        path: the folder to create or fill.
        overwrite: by default a non-empty ``path`` is refused. With ``overwrite=True`` the three
            class folders under ``path`` are deleted first (so no stale images of an earlier,
            larger write survive); other files and folders in ``path`` are left alone.

    Returns:
        ``path`` as a :class:`pathlib.Path`.
    """
    from PIL import Image

    root = Path(path)
    if root.exists() and not root.is_dir():
        raise DataError(f"cannot write the synthetic data set to {root}: it is a file, not a folder")
    non_empty = root.is_dir() and any(root.iterdir())
    if non_empty and not overwrite:
        raise DataError(
            f"refusing to write the synthetic data set into the non-empty folder {root}; "
            "pass overwrite=True or choose an empty folder"
        )
    x, y, subcats = synthetic_face_masks(n_per_class, image_size, seed, return_subcategories=True)
    if non_empty:  # only now that the arguments proved good
        for name in CLASS_NAMES:
            if (root / name).is_dir():
                shutil.rmtree(root / name)
    pixels = np.round(x * 255.0).astype(np.uint8)
    counters: dict[tuple[int, str], int] = {}
    for i in range(len(y)):
        key = (int(y[i]), str(subcats[i]))
        j = counters.get(key, 0)
        counters[key] = j + 1
        folder = root / CLASS_NAMES[key[0]] / key[1] / f"part_{j // _FILES_PER_FOLDER + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        _write_png_atomically(Image.fromarray(pixels[i]), folder / f"img_{i + 1:05d}.png")
    return root


# ----------------------------------------------------------------------------------------------
# Helpers: arguments, files
# ----------------------------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise RobustmaskError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _write_png_atomically(image: Image.Image, target: Path) -> None:
    write_atomically(target, lambda tmp: image.save(tmp, format="PNG"))


# ----------------------------------------------------------------------------------------------
# Per-image parameters: geometry and colours are drawn up front, only pixel noise per chunk
# ----------------------------------------------------------------------------------------------


def _assign_labels(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels, subcats = [], []
    for label, name in enumerate(CLASS_NAMES):
        if name == "incorrect_mask":
            n_chin = n // 2 + (rng.random() < 0.5) * (n % 2)
            names = ["mask_on_chin"] * n_chin + ["mask_on_mouth_chin"] * (n - n_chin)
        else:
            n_complex = int(round(n * _COMPLEX_SHARE[name]))
            names = ["complex"] * n_complex + ["simple"] * (n - n_complex)
        labels += [label] * n
        subcats += names
    order = rng.permutation(3 * n)
    return np.asarray(labels)[order], np.asarray(subcats)[order]


def _hsv_to_rgb(h, s, v):
    h6 = (h % 1.0) * 6.0
    i = np.floor(h6).astype(int) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], -1).astype(_F)


def _random_colours(rng, n):
    return _hsv_to_rgb(rng.random(n), rng.uniform(0.0, 0.9, n), rng.uniform(0.15, 1.0, n))


def _skin_colours(rng, n):
    t = rng.uniform(0, len(_SKIN_RAMP) - 1, n)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(_SKIN_RAMP) - 1)
    frac = (t - lo)[:, None]
    base = _SKIN_RAMP[lo] * (1 - frac) + _SKIN_RAMP[hi] * frac
    return np.clip(base + rng.normal(0, 0.025, (n, 3)), 0, 1).astype(_F)


def _mixture(rng, n, parts):
    """Pick per row from several ``(probability, colours (n, 3))`` sources."""
    probs = np.array([prob for prob, _ in parts], float)
    which = rng.choice(len(parts), n, p=probs / probs.sum())
    out = np.empty((n, 3), _F)
    for k, (_, colours) in enumerate(parts):
        out[which == k] = colours[which == k]
    return out


def _covering_colours(rng, n, skin, background):
    """Colours of masks, scarves and gloves: common mask colours, skin- and background-like, random."""
    palette = _MASKS[rng.integers(0, len(_MASKS), n)] + rng.normal(0, 0.03, (n, 3))
    near_bg = background + rng.normal(0, 0.05, (n, 3))
    near_skin = np.where(rng.random((n, 1)) < 0.5, _skin_colours(rng, n), skin + rng.normal(0, 0.04, (n, 3)))
    colours = _mixture(
        rng,
        n,
        [(0.45, palette), (0.12, near_skin), (0.1, near_bg), (0.33, _random_colours(rng, n))],
    )
    return np.clip(colours, 0, 1).astype(_F)


def _draw_params(labels, subcats, rng):
    n = len(labels)
    u = lambda lo, hi, shape=n: rng.uniform(lo, hi, shape).astype(_F)  # noqa: E731
    p: dict[str, np.ndarray] = {}
    skin = _skin_colours(rng, n)

    # Background: flat, gradient, low-frequency noise or clutter; colours can be skin-like.
    greys = np.repeat(u(0.2, 0.97)[:, None], 3, 1) + rng.normal(0, 0.02, (n, 3))
    bg1 = _mixture(rng, n, [(0.5, _random_colours(rng, n)), (0.2, _skin_colours(rng, n)), (0.3, greys)])
    p["bg1"] = np.clip(bg1, 0, 1).astype(_F)
    p["bg2"] = _random_colours(rng, n)
    kind = rng.integers(0, 4, n)  # 0 flat, 1 gradient, 2 noise, 3 clutter
    p["bg_grad"] = np.where(kind == 1, u(0.4, 1.0), 0).astype(_F)
    p["bg_angle"] = u(0, 2 * np.pi)
    p["bg_noise"] = np.where(kind == 2, u(0.08, 0.2), u(0.0, 0.03)).astype(_F)
    p["clutter"] = kind == 3
    k = 6
    p["cl_centre"] = u(0, 1, (n, k, 2))
    p["cl_half"] = u(0.04, 0.22, (n, k, 2))
    p["cl_colour"] = _random_colours(rng, n * k).reshape(n, k, 3)

    # Face geometry, in image units: centre, half-height R, aspect a (width/height), rotation.
    p["cx"], p["cy"] = u(0.43, 0.57), u(0.42, 0.5)
    p["R"], p["aspect"] = u(0.27, 0.33), u(0.70, 0.86)
    p["angle"] = u(-0.2, 0.2)
    p["skin"] = skin
    hair = _HAIR[rng.choice(len(_HAIR), n, p=_HAIR_P)] + rng.normal(0, 0.02, (n, 3))
    dyed = rng.random(n) < 0.05
    hair[dyed] = _random_colours(rng, int(dyed.sum()))
    p["hair"] = np.clip(hair, 0, 1).astype(_F)
    p["hair_style"] = rng.choice(3, n, p=[0.1, 0.6, 0.3])  # bald, short, medium
    p["hairline"] = u(-0.78, -0.5)
    p["hair_volume"] = u(0.05, 0.2)
    p["shirt"] = _mixture(rng, n, [(0.6, _random_colours(rng, n)), (0.4, _MASKS[rng.integers(0, 7, n)])])

    # Features, in face units (face half-height = 1).
    p["eye_x"], p["eye_y"], p["eye_r"] = u(0.26, 0.34), u(-0.28, -0.18), u(0.055, 0.08)
    p["iris"] = _IRIS[rng.integers(0, len(_IRIS), n)]
    p["brow_tilt"] = u(-0.15, 0.15)
    p["nose_y"], p["nose_w"] = u(0.15, 0.22), u(0.07, 0.11)
    p["mouth_y"], p["mouth_w"], p["mouth_h"] = u(0.5, 0.56), u(0.17, 0.28), u(0.03, 0.06)
    p["lips"] = np.clip(skin * u(0.6, 0.85)[:, None] + np.array([0.12, 0.0, 0.0], _F), 0, 1).astype(_F)

    # Masks: where the top edge sits decides the class.
    name = np.asarray(CLASS_NAMES)[labels]
    has_mask = name != "without_mask"
    top = np.where(name == "with_mask", u(-0.09, 0.0), 0).astype(_F)
    top = np.where(subcats == "mask_on_mouth_chin", u(0.30, 0.38), top)
    top = np.where(subcats == "mask_on_chin", u(0.66, 0.74), top).astype(_F)
    p["has_mask"], p["mask_top"] = has_mask, top
    p["mask_c1"] = _covering_colours(rng, n, skin, p["bg1"])
    p["mask_c2"] = _covering_colours(rng, n, skin, p["bg1"])
    p["mask_pattern"] = rng.choice(5, n, p=[0.4, 0.15, 0.15, 0.15, 0.15])  # solid stripes dots 2-tone pleats
    p["mask_freq"] = u(3.0, 7.0)
    p["mask_stripe_angle"] = u(0, np.pi)
    p["strap"] = np.where(rng.random((n, 1)) < 0.5, p["mask_c1"] * 0.85, np.float32(0.92)).astype(_F)

    # Scarves (all classes alike, so a covering below the chin is no cue) in mask-like colours.
    p["scarf"] = rng.random(n) < 0.22
    p["scarf_top"] = u(0.98, 1.1)
    p["scarf_c1"] = _covering_colours(rng, n, skin, p["bg1"])
    p["scarf_c2"] = _covering_colours(rng, n, skin, p["bg1"])
    p["scarf_striped"] = rng.random(n) < 0.4

    # The paper's "complex" cases: beard, long hair past the face, a hand over part of the face.
    complex_ = subcats == "complex"
    feats = rng.random((n, 3)) < 0.45
    none = complex_ & ~feats.any(1)
    feats[none, rng.integers(0, 3, int(none.sum()))] = True
    feats &= complex_[:, None]
    p["beard"], p["long_hair"], p["hand"] = feats[:, 0], feats[:, 1], feats[:, 2]
    p["beard_colour"] = np.where(rng.random((n, 1)) < 0.8, p["hair"] * 0.9, _HAIR[rng.integers(0, 3, n)])
    p["beard_colour"] = p["beard_colour"].astype(_F)
    p["strand_side"] = rng.choice([-1.0, 0.0, 1.0], n).astype(_F)  # long hair over one cheek or neither
    p["hand_u"] = u(-0.55, 0.55)
    p["hand_v"] = np.where(has_mask, u(-0.55, -0.1), u(-0.45, 0.7)).astype(_F)
    p["hand_angle"] = u(-0.9, 0.9)
    p["hand_size"] = u(0.75, 1.0)
    gloves = rng.random(n) < 0.3
    hand = np.clip(skin * u(0.92, 1.08)[:, None], 0, 1)
    hand[gloves] = _covering_colours(rng, n, skin, p["bg1"])[gloves]
    p["hand_colour"] = hand.astype(_F)

    # Lighting.
    p["brightness"], p["contrast"] = u(-0.1, 0.1), u(0.75, 1.15)
    p["light"], p["light_angle"] = u(0.0, 0.4), u(0, 2 * np.pi)
    p["cast"] = u(0.9, 1.1, (n, 3))
    p["noise"] = u(0.004, 0.045)
    return p


# ----------------------------------------------------------------------------------------------
# Rendering. Images are drawn channel-first, (3, B, H, W): NumPy broadcasts a (3, B, 1, 1) colour
# over contiguous pixel rows many times faster than over a trailing axis of length 3.
# ----------------------------------------------------------------------------------------------


def _soft(signed_distance, pixel):
    """Anti-aliased coverage from a signed distance (> 0 inside) and the pixel size (same units)."""
    return np.clip(signed_distance / pixel + 0.5, 0.0, 1.0)


def _ellipse(u, v, u0, v0, ru, rv, pixel):
    r = np.sqrt(((u - u0) / ru) ** 2 + ((v - v0) / rv) ** 2)
    return _soft((1.0 - r) * np.minimum(ru, rv).astype(_F), pixel)  # float32 even for two scalars


def _rect(u, v, u0, v0, hu, hv, pixel):
    return _soft(hu - np.abs(u - u0), pixel) * _soft(hv - np.abs(v - v0), pixel)


def _capsule(u, v, a, b, radius, pixel):
    """A thick line segment from point ``a`` to ``b`` (each a pair of numbers or arrays)."""
    du, dv = b[0] - a[0], b[1] - a[1]
    t = np.clip(((u - a[0]) * du + (v - a[1]) * dv) / (du * du + dv * dv + 1e-9), 0, 1)
    dist = np.sqrt((u - a[0] - t * du) ** 2 + (v - a[1] - t * dv) ** 2)
    return _soft(radius - dist, pixel)


def _paint(img, coverage, colour):
    """Alpha-blend ``colour`` ((3, B, 1, 1) or (3, B, H, W)) over ``img`` (3, B, H, W) in place."""
    img += coverage * (colour - img)


def _col(c):
    """(B, 3) colours -> (3, B, 1, 1)."""
    return np.ascontiguousarray(c.T)[:, :, None, None]


def _b(a):
    """(B,) per-image values -> (B, 1, 1) for broadcasting over pixels."""
    return a[:, None, None]


def _low_noise(rng, b, size, grid=6):
    """Smooth colour noise (3, B, size, size): a coarse Gaussian grid upsampled bilinearly.

    Both passes interpolate along the second-last axis (gathers of whole rows are fast; matrix
    products would start BLAS threads for tiny work), so the result comes out transposed, which
    random noise does not mind.
    """
    g = rng.standard_normal((3, b, grid, grid)).astype(_F)
    pos = (np.arange(size, dtype=_F) + 0.5) / size * (grid - 1)
    i0 = np.minimum(pos.astype(int), grid - 2)
    f = (pos - i0)[:, None]
    rows = g[:, :, i0] * (1 - f) + g[:, :, i0 + 1] * f  # (3, B, size, grid)
    cols = np.ascontiguousarray(rows.swapaxes(-1, -2))  # (3, B, grid, size)
    return cols[:, :, i0] * (1 - f) + cols[:, :, i0 + 1] * f


def _pattern(u, v, c1, c2, pattern, freq, angle, pixel):
    """Fabric of masks and scarves, per image: solid, stripes, dots, two-tone or pleated (ids 0..4)."""
    pid, s = _b(pattern), _b(freq)
    mix = np.zeros(u.shape, _F)
    if np.any(pattern == 1):
        along = u * _b(np.cos(angle)) + v * _b(np.sin(angle))
        mix += (pid == 1) * _soft(np.sin(2 * np.pi * s * along) * 0.08, pixel * 6)
    if np.any(pattern == 2):
        fu, fv = u * s * 1.2, v * s * 1.2
        fu, fv = fu - np.floor(fu) - 0.5, fv - np.floor(fv) - 0.5
        mix += (pid == 2) * _soft(0.22 - np.sqrt(fu * fu + fv * fv), pixel * s * 1.2)
    if np.any(pattern == 3):
        mix += (pid == 3) * _soft(u * _b(np.where(np.cos(angle) < 0, -1.0, 1.0).astype(_F)), pixel)
    c1 = _col(c1)
    fabric = c1 + mix * (_col(c2) - c1)
    if np.any(pattern == 4):
        fabric = fabric * (1.0 - 0.12 * ((pid == 4) & (np.sin(2 * np.pi * 9.0 * v) > 0.4)).astype(_F))
    return fabric


def _face_frame(p, X, Y, size):
    """Face coordinates of pixel centres ``X`` (B|1, 1, W) and ``Y`` (B|1, H, 1), in image units.

    ``u`` points to the face's right and ``v`` down, the face's half-height is 1; ``px`` is one pixel
    in face units (the anti-aliasing width).
    """
    R, th = _b(p["R"]), _b(p["angle"])
    dx, dy = X - _b(p["cx"]), Y - _b(p["cy"])
    cos, sin = np.cos(th), np.sin(th)
    return (dx * cos + dy * sin) / R, (-dx * sin + dy * cos) / R, 1.0 / (size * R)


def _face_window(p, size, u_lo, u_hi, v_lo, v_hi):
    """Per-image pixel windows, one shape for all, each holding a face-coordinate box.

    The box bounds are scalars or per-image arrays. Returns ``(r0, c0, h, w, X, Y)``: the window of
    image ``i`` is ``img[:, i, r0[i]:r0[i] + h, c0[i]:c0[i] + w]``; ``X`` (B, 1, w) and ``Y``
    (B, h, 1) are its pixel centres in image units.
    """
    uc, vc = (np.add(u_lo, u_hi) / 2, np.add(v_lo, v_hi) / 2)
    hu, hv = (np.subtract(u_hi, u_lo) / 2, np.subtract(v_hi, v_lo) / 2)
    R, cos, sin = p["R"], np.cos(p["angle"]), np.sin(p["angle"])
    x_mid, y_mid = p["cx"] + R * (uc * cos - vc * sin), p["cy"] + R * (uc * sin + vc * cos)
    x_half, y_half = R * (hu * np.abs(cos) + hv * np.abs(sin)), R * (hu * np.abs(sin) + hv * np.abs(cos))
    w = min(size, int(np.ceil(2 * x_half.max() * size)) + 4)
    h = min(size, int(np.ceil(2 * y_half.max() * size)) + 4)
    r0 = np.clip(np.floor((y_mid - y_half) * size).astype(int) - 2, 0, size - h)
    c0 = np.clip(np.floor((x_mid - x_half) * size).astype(int) - 2, 0, size - w)
    X = ((c0[:, None] + np.arange(w) + 0.5) / size).astype(_F)[:, None, :]
    Y = ((r0[:, None] + np.arange(h) + 0.5) / size).astype(_F)[:, :, None]
    return r0, c0, h, w, X, Y


class _Rows(dict):
    """The per-image parameters of a subset of images, indexed on first use."""

    def __init__(self, params, rows):
        super().__init__()
        self._params, self._rows = params, rows

    def __missing__(self, name):
        value = self[name] = self._params[name][self._rows]
        return value


def _layer(img, p, which, size, box, draw):
    """Run ``draw(window, q, u, v, px)`` on the images ``which`` (a boolean mask or None for all).

    Each image is drawn in its own window: ``box(q)`` gives the face-coordinate box
    ``(u_lo, u_hi, v_lo, v_hi)`` the layer can touch, ``q`` is ``p`` restricted to those images and
    ``u, v, px`` the window's face coordinates. Drawing only in windows around the smaller parts of
    a face keeps the generator fast. (Windows are copied with a loop of slices: NumPy's fancy
    indexing would be several times slower.)
    """
    sel = np.arange(len(p["cx"])) if which is None else np.flatnonzero(which)
    if sel.size == 0:
        return
    q = p if which is None else _Rows(p, sel)
    r0, c0, h, w, X, Y = _face_window(q, size, *box(q))
    win = np.empty((3, sel.size, h, w), _F)
    for j, i in enumerate(sel):
        win[:, j] = img[:, i, r0[j] : r0[j] + h, c0[j] : c0[j] + w]
    u, v, px = _face_frame(q, X, Y, size)
    draw(win, q, u, v, px)
    for j, i in enumerate(sel):
        img[:, i, r0[j] : r0[j] + h, c0[j] : c0[j] + w] = win[:, j]


def _draw_head(win, q, u, v, px):
    """Hair cap (short, or medium down to the ears), ears, the face shaded towards its rim, fringe."""
    a, uu, skin = _b(q["aspect"]), np.abs(u), _col(q["skin"])
    style, vol = q["hair_style"], _b(q["hair_volume"])
    has_hair, cut = _b((style > 0).astype(_F)), _b(np.where(style == 2, 0.25, -0.25).astype(_F))
    cap = _ellipse(u, v, 0, -0.12 - vol * 0.3, a + 0.08 + vol * 0.5, 1.0 + vol, px)
    _paint(win, cap * _soft(cut - v, px) * has_hair, _col(q["hair"]))
    _paint(win, _ellipse(uu, v, a - 0.03, -0.05, 0.12, 0.2, px), skin * 0.92)
    r2 = (u / a) ** 2 + v * v
    rim = (1.0 - np.sqrt(r2)) * a
    _paint(win, _soft(rim, px), skin * (1.0 - 0.14 * r2))
    wave = 0.06 * np.cos(u * 9.0)
    _paint(win, _soft(rim + 0.04, px) * _soft(_b(q["hairline"]) + wave - v, px) * has_hair, _col(q["hair"]))


def _draw_features(win, q, u, v, px):
    """Eyes, brows, nose and mouth (all within u in +-0.55, v in [-0.55, 0.68])."""
    uu, skin = np.abs(u), _col(q["skin"])
    ex, ey, er = _b(q["eye_x"]), _b(q["eye_y"]), _b(q["eye_r"])
    _paint(win, _ellipse(uu, v, ex, ey, er * 1.5, er * 0.8, px), np.float32(0.95))
    _paint(win, _ellipse(uu, v, ex, ey, er * 0.7, er * 0.7, px), _col(q["iris"]))
    _paint(win, _ellipse(uu, v, ex, ey, er * 0.32, er * 0.32, px), np.float32(0.03))
    brow_v = ey - er - 0.08 + _b(q["brow_tilt"]) * (uu - ex)
    _paint(win, _rect(uu, v, ex, brow_v, er * 1.7, 0.025, px), _col(q["hair"]) * 0.7)
    ny, nw = _b(q["nose_y"]), _b(q["nose_w"])
    _paint(win, _rect(u, v, 0, (ey + ny) / 2, 0.03, (ny - ey) / 2, px) * 0.5, skin * 0.8)
    _paint(win, _ellipse(u, v, 0, ny - 0.02, nw, 0.06, px), skin * 0.82)
    _paint(win, _ellipse(uu, v, nw * 0.5, ny + 0.01, 0.025, 0.018, px), skin * 0.4)
    my, mw, mh = _b(q["mouth_y"]), _b(q["mouth_w"]), _b(q["mouth_h"])
    _paint(win, _ellipse(u, v, 0, my, mw, mh, px), _col(q["lips"]))
    _paint(win, _rect(u, v, 0, my, mw * 0.85, 0.008, px), _col(q["lips"]) * 0.45)


def _draw_beard(rng):
    """Textured hair over jaw, cheeks and upper lip, the mouth left open (within u +-1, v [0, 1.1])."""

    def draw(win, q, u, v, px):
        a = _b(q["aspect"])
        m = _ellipse(u, v, 0, 0.02, a * 1.04, 1.05, px) * _soft(v - (0.05 + 0.32 * (1 - (u / a) ** 2)), px)
        m = m * (1 - _ellipse(u, v, 0, _b(q["mouth_y"]), _b(q["mouth_w"]) * 1.1, 0.08, px))
        texture = 0.75 + 0.5 * rng.random(m.shape, dtype=_F)
        _paint(win, m, _col(q["beard_colour"]) * texture)

    return draw


def _draw_scarf(win, q, u, v, px):
    """A scarf below the chin, solid or striped (within u +-1.1, v [0.9, 2.05])."""
    a = _b(q["aspect"])
    m = _rect(u, v, 0, 1.5, a * 1.2, 0.5, px) * _soft(v - _b(q["scarf_top"]) - 0.1 * (u / a) ** 2, px)
    stripes = np.where(q["scarf_striped"], 1, 0)  # pattern ids: 0 solid, 1 stripes
    horizontal = np.full(len(stripes), np.pi / 2, _F)
    _paint(win, m, _pattern(u, v, q["scarf_c1"], q["scarf_c2"], stripes, q["mask_freq"], horizontal, px))


def _draw_mask(win, q, u, v, px):
    """A face mask whose top edge (higher over the nose bridge) sits at ``mask_top``, with straps."""
    a, top = _b(q["aspect"]), _b(q["mask_top"])
    m = _ellipse(u, v, 0, 0.03, a * 1.08, 1.1, px) * _soft(v - top - 0.12 * (u / a) ** 2, px)
    fabric = _pattern(
        u, v, q["mask_c1"], q["mask_c2"], q["mask_pattern"], q["mask_freq"], q["mask_stripe_angle"], px
    )
    fabric = fabric * (1.0 - 0.12 * (u / a) ** 2)
    _paint(win, _capsule(np.abs(u), v, (a * 0.9, top + 0.1), (a * 1.02, -0.12), 0.022, px), _col(q["strap"]))
    _paint(win, m, fabric)


def _mask_box(q):
    return -1.0, 1.0, np.minimum(q["mask_top"] - 0.05, -0.17), 1.16


def _draw_strand(win, q, u, v, px):
    """Long hair hanging over one cheek and past the chin."""
    _paint(
        win, _rect(u * _b(q["strand_side"]), v, _b(q["aspect"]) * 0.88, 0.5, 0.17, 1.15, px), _col(q["hair"])
    )


def _strand_box(q):
    centre = q["strand_side"] * q["aspect"] * 0.88
    return centre - 0.2, centre + 0.2, -0.7, 1.7


def _draw_hand(win, q, u, v, px):
    """A hand (palm, four fingers, thumb), skin-coloured or gloved, within 0.8 hand sizes of its centre."""
    ha, s = _b(q["hand_angle"]), _b(q["hand_size"])
    hu, hv = u - _b(q["hand_u"]), v - _b(q["hand_v"])
    lu = (hu * np.cos(ha) + hv * np.sin(ha)) / s
    lv = (-hu * np.sin(ha) + hv * np.cos(ha)) / s
    lp = px / s
    m = _rect(lu, lv, 0, 0.12, 0.27, 0.3, lp)
    for fx, length in ((-0.2, 0.36), (-0.07, 0.44), (0.07, 0.42), (0.2, 0.32)):
        m = np.maximum(m, _capsule(lu, lv, (fx, -0.1), (fx, -0.1 - length), 0.065, lp))
    m = np.maximum(m, _capsule(lu, lv, (0.24, 0.25), (0.45, -0.05), 0.07, lp))
    _paint(win, m, _col(q["hand_colour"]) * (1.0 - 0.1 * lv))


def _hand_box(q):
    r = 0.8 * q["hand_size"]
    return q["hand_u"] - r, q["hand_u"] + r, q["hand_v"] - r, q["hand_v"] + r


def _render(p, size, rng):
    """Draw one chunk of images (back to front), light them and add noise; returns (3, B, S, S)."""
    b = len(p["cx"])
    coords = (np.arange(size, dtype=_F) + 0.5) / size
    X, Y = coords[None, None, :], coords[None, :, None]

    # Background: flat, gradient, smooth noise, clutter of boxes and blobs.
    ang = _b(p["bg_angle"])
    t = (X - 0.5) * np.cos(ang) + (Y - 0.5) * np.sin(ang) + 0.5
    bg1 = _col(p["bg1"])
    img = bg1 + (_b(p["bg_grad"]) * t) * (_col(p["bg2"]) - bg1) + _b(p["bg_noise"]) * _low_noise(rng, b, size)
    img = np.ascontiguousarray(img, dtype=_F)
    sel = np.flatnonzero(p["clutter"])
    if sel.size:
        sub = img[:, sel]
        px_img = np.float32(1.0 / size)
        for k in range(p["cl_centre"].shape[1]):
            c, h = p["cl_centre"][sel, k], p["cl_half"][sel, k]
            shape = _ellipse if k % 2 else _rect  # alternate blobs and boxes
            _paint(
                sub,
                shape(X, Y, _b(c[:, 0]), _b(c[:, 1]), _b(h[:, 0]), _b(h[:, 1]), px_img),
                _col(p["cl_colour"][sel, k]),
            )
        img[:, sel] = sub

    # Shirt, neck, long hair behind the head: large shapes, drawn on whole images.
    u, v, px = _face_frame(p, X, Y, size)
    _paint(img, _ellipse(u, v, 0, 2.6, 2.5, 1.3, px), _col(p["shirt"]))
    _paint(img, _rect(u, v, 0, 1.2, 0.36, 0.9, px), _col(p["skin"]) * 0.85)
    sel = np.flatnonzero(p["long_hair"])
    if sel.size:
        wide = _b(p["aspect"][sel]) + 0.3
        m = _rect(u[sel], v[sel], 0, 0.6, wide, 1.25, px[sel])
        m = np.maximum(m, _ellipse(u[sel], v[sel], 0, -0.1, wide, 1.05, px[sel]))
        sub = img[:, sel]
        _paint(sub, m, _col(p["hair"][sel]))
        img[:, sel] = sub

    # The head, then smaller parts, each drawn in windows around it.
    _layer(img, p, None, size, lambda q: (-1.1, 1.1, -1.42, 1.05), _draw_head)
    _layer(img, p, None, size, lambda q: (-0.55, 0.55, -0.55, 0.68), _draw_features)
    _layer(img, p, p["beard"], size, lambda q: (-1.0, 1.0, 0.0, 1.1), _draw_beard(rng))
    _layer(img, p, p["scarf"], size, lambda q: (-1.1, 1.1, 0.9, 2.05), _draw_scarf)
    _layer(img, p, p["has_mask"], size, _mask_box, _draw_mask)
    _layer(img, p, p["long_hair"] & (p["strand_side"] != 0), size, _strand_box, _draw_strand)
    _layer(img, p, p["hand"], size, _hand_box, _draw_hand)

    # Lighting: colour cast and contrast, brightness, a light gradient; uniform sensor noise.
    contrast = _b(p["contrast"])
    img *= _col(p["cast"]) * contrast
    img += 0.5 * (1.0 - contrast) + _b(p["brightness"])
    la = _b(p["light_angle"])
    img *= 1.0 + _b(p["light"]) * ((X - 0.5) * np.cos(la) + (Y - 0.5) * np.sin(la))
    noise = rng.random(img.shape, dtype=_F)
    noise -= 0.5
    noise *= _b(p["noise"]) * np.float32(np.sqrt(12.0))  # uniform noise with std "noise"
    img += noise
    return np.clip(img, 0.0, 1.0, out=img)
