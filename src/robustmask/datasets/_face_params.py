"""The synthetic faces' per-image parameters: geometry and colours, drawn up front for a whole set.

Only pixel noise is drawn per rendered chunk (`_face_drawing.py`), so the parameters of image i do
not depend on the chunk size and the same seed gives the same images at any size.
"""

from __future__ import annotations

import numpy as np

from robustmask.datasets.directory import CLASS_NAMES

# The paper's share of complex images (Kaggle set: 789 of 4,789 and 746 of 4,746).
_COMPLEX_SHARE = {"with_mask": 789 / 4789, "without_mask": 746 / 4746}

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


def assign_labels(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def draw_params(labels, subcats, rng):
    """Every image's parameters, by name: one array per parameter, one row per image.

    The steps draw from `rng` in a fixed order (background, head, features, masks, scarves, the
    complex cases, lighting), so the same seed gives the same faces.
    """
    n = len(labels)
    u = _uniform(rng, n)
    p: dict[str, np.ndarray] = {}
    skin = _skin_colours(rng, n)
    _draw_background(p, rng, u, n)
    _draw_head(p, rng, u, n, skin)
    _draw_features(p, rng, u, n, skin)
    _draw_masks(p, rng, u, n, skin, np.asarray(CLASS_NAMES)[labels], subcats)
    _draw_scarves(p, rng, u, n, skin)
    _draw_complex_cases(p, rng, u, n, skin, subcats == "complex")
    _draw_lighting(p, u, n)
    return p


def _uniform(rng, n):
    """``u(lo, hi, shape=n)``: float32 uniform draws, one per image unless `shape` says otherwise."""
    return lambda lo, hi, shape=n: rng.uniform(lo, hi, shape).astype(_F)


def _draw_background(p, rng, u, n):
    """Background: flat, gradient, low-frequency noise or clutter; colours can be skin-like."""
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


def _draw_head(p, rng, u, n, skin):
    """Face geometry, in image units: centre, half-height R, aspect a (width/height), rotation; hair, shirt."""
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


def _draw_features(p, rng, u, n, skin):
    """Features, in face units (face half-height = 1)."""
    p["eye_x"], p["eye_y"], p["eye_r"] = u(0.26, 0.34), u(-0.28, -0.18), u(0.055, 0.08)
    p["iris"] = _IRIS[rng.integers(0, len(_IRIS), n)]
    p["brow_tilt"] = u(-0.15, 0.15)
    p["nose_y"], p["nose_w"] = u(0.15, 0.22), u(0.07, 0.11)
    p["mouth_y"], p["mouth_w"], p["mouth_h"] = u(0.5, 0.56), u(0.17, 0.28), u(0.03, 0.06)
    p["lips"] = np.clip(skin * u(0.6, 0.85)[:, None] + np.array([0.12, 0.0, 0.0], _F), 0, 1).astype(_F)


def _draw_masks(p, rng, u, n, skin, name, subcats):
    """Masks: where the top edge sits decides the class (`name`: each image's class name)."""
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


def _draw_scarves(p, rng, u, n, skin):
    """Scarves (all classes alike, so a covering below the chin is no cue) in mask-like colours."""
    p["scarf"] = rng.random(n) < 0.22
    p["scarf_top"] = u(0.98, 1.1)
    p["scarf_c1"] = _covering_colours(rng, n, skin, p["bg1"])
    p["scarf_c2"] = _covering_colours(rng, n, skin, p["bg1"])
    p["scarf_striped"] = rng.random(n) < 0.4


def _draw_complex_cases(p, rng, u, n, skin, complex_):
    """The paper's "complex" cases: beard, long hair past the face, a hand over part of the face."""
    feats = rng.random((n, 3)) < 0.45
    none = complex_ & ~feats.any(1)
    feats[none, rng.integers(0, 3, int(none.sum()))] = True
    feats &= complex_[:, None]
    p["beard"], p["long_hair"], p["hand"] = feats[:, 0], feats[:, 1], feats[:, 2]
    p["beard_colour"] = np.where(rng.random((n, 1)) < 0.8, p["hair"] * 0.9, _HAIR[rng.integers(0, 3, n)])
    p["beard_colour"] = p["beard_colour"].astype(_F)
    p["strand_side"] = rng.choice([-1.0, 0.0, 1.0], n).astype(_F)  # long hair over one cheek or neither
    p["hand_u"] = u(-0.55, 0.55)
    p["hand_v"] = np.where(p["has_mask"], u(-0.55, -0.1), u(-0.45, 0.7)).astype(_F)
    p["hand_angle"] = u(-0.9, 0.9)
    p["hand_size"] = u(0.75, 1.0)
    gloves = rng.random(n) < 0.3
    hand = np.clip(skin * u(0.92, 1.08)[:, None], 0, 1)
    hand[gloves] = _covering_colours(rng, n, skin, p["bg1"])[gloves]
    p["hand_colour"] = hand.astype(_F)


def _draw_lighting(p, u, n):
    """Lighting."""
    p["brightness"], p["contrast"] = u(-0.1, 0.1), u(0.75, 1.15)
    p["light"], p["light_angle"] = u(0.0, 0.4), u(0, 2 * np.pi)
    p["cast"] = u(0.9, 1.1, (n, 3))
    p["noise"] = u(0.004, 0.045)
