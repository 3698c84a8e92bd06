"""Drawing the synthetic faces from their parameters (`_face_params.py`), chunk by chunk.

Images are drawn channel-first, (3, B, H, W): NumPy broadcasts a (3, B, 1, 1) colour over contiguous
pixel rows many times faster than over a trailing axis of length 3. Shapes are soft-edged signed
distance fields in face coordinates (u across, v down, the face's half-width = 1), so any image size
draws the same picture.
"""

from __future__ import annotations

import numpy as np

from robustmask.datasets._face_shapes import (
    _F,
    _b,
    _capsule,
    _col,
    _ellipse,
    _low_noise,
    _paint,
    _pattern,
    _rect,
    _soft,
)


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


def render(p, size, rng):
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
