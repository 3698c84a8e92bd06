"""The drawing primitives of the synthetic faces: soft-edged shapes, alpha blending, noise, fabric.

Images are drawn channel-first, (3, B, H, W) (see `_face_drawing.py`). Shapes are soft-edged signed
distance fields: coverage in [0, 1] from a signed distance (> 0 inside) and the pixel size in the same
units, so edges are anti-aliased at any image size.
"""

from __future__ import annotations

import numpy as np

_F = np.float32


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
