"""The ART patch optimiser behind AdversarialPatch pastes the patch at its box: exactly when `jitter`
is 0, within `jitter` pixels of it while optimising, and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest

from robustmask.attacks.art.estimator import art_estimator
from robustmask.attacks.art.patch import PlacedAdversarialPatch
from robustmask.modelinfo import inspect_model

BOX = (3, 2, 4, 6)  # top, left, height, width on 12 x 12 images


def pasted(x: np.ndarray, patch: np.ndarray, top: int, left: int) -> np.ndarray:
    out = x.copy()
    out[:, top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return out


@pytest.fixture()
def setup(tiny_model, tiny_data):
    x = tiny_data[0][:4]
    estimator = art_estimator(tiny_model, inspect_model(tiny_model, None, x), (0.0, 1.0))
    patch = np.random.default_rng(0).random(BOX[2:] + (3,)).astype(np.float32)
    return estimator, x, patch


def test_the_patch_goes_exactly_at_its_box(setup):
    estimator, x, patch = setup
    attack = PlacedAdversarialPatch(estimator, box=BOX, jitter=2, max_iter=1, verbose=False)
    assert attack.patch_shape == (4, 6, 3)  # the rectangle, not ART's square
    out = attack._random_overlay(x, patch).numpy()  # not optimising: no jitter
    np.testing.assert_allclose(out, pasted(x, patch, BOX[0], BOX[1]), rtol=1e-6)


def test_while_optimising_it_moves_by_at_most_jitter_pixels(setup):
    estimator, x, patch = setup
    attack = PlacedAdversarialPatch(estimator, box=BOX, jitter=1, max_iter=1, verbose=False)
    attack._jittering = True  # as during generate
    np.random.seed(0)
    places = set()
    for _ in range(30):
        out = attack._random_overlay(x, patch).numpy()
        found = [
            (top, left)
            for top in range(BOX[0] - 1, BOX[0] + 2)
            for left in range(BOX[1] - 1, BOX[1] + 2)
            if np.allclose(out, pasted(x, patch, top, left), rtol=1e-6)
        ]
        assert len(found) == 1
        places.add(found[0])
    assert len(places) > 1  # it does move


def test_generate_jitters_while_optimising_and_then_stops(setup, tiny_data, monkeypatch):
    estimator, x, _ = setup
    attack = PlacedAdversarialPatch(estimator, box=BOX, jitter=1, max_iter=2, batch_size=4, verbose=False)
    jittering = []
    overlay = PlacedAdversarialPatch._random_overlay

    def recording(self, images, patch, scale=None, mask=None):
        jittering.append(self._jittering)
        return overlay(self, images, patch, scale, mask)

    monkeypatch.setattr(PlacedAdversarialPatch, "_random_overlay", recording)
    attack.generate(x, np.eye(3, dtype=np.float32)[tiny_data[1][:4]])
    assert jittering and all(jittering)
    assert attack._jittering is False  # applying the patch afterwards puts it exactly at its box
