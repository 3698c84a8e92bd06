"""Universal perturbations and patches: fooling rates, transfer to unseen images, printable files, the CLI."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import make_images
from PIL import Image

from robustmask.attacks.universal import SGDUniversalPerturbation
from robustmask.errors import AttackError, DataError, RobustmaskError
from robustmask.evaluation.printable import (
    load_patch,
    load_universal_perturbation,
    print_size_cm,
    save_printable_patch,
    save_universal_perturbation,
)
from robustmask.evaluation.transfer import (
    TARGET_COLUMNS,
    TRANSFER_COLUMNS,
    apply_perturbation,
    fooling_rate,
    transfer_table,
)


def _predicted(model, x):
    return np.argmax(model.predict(x, verbose=0), axis=1)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------------------------------------- fooling rate
def test_fooling_rate_is_the_share_of_changed_predictions(tiny_model, tiny_data):
    x, y = tiny_data
    rng = np.random.default_rng(0)
    # Swap half the images for images of other classes: their predictions change, the others do not.
    x_adv = x.copy()
    swap = rng.permutation(len(x))[: len(x) // 2]
    x_adv[swap] = x[rng.permutation(len(x))[: len(swap)]]
    expected = np.mean(_predicted(tiny_model, x_adv) != _predicted(tiny_model, x))
    assert 0.1 < expected < 0.9
    assert fooling_rate(tiny_model, x, x_adv, batch_size=7) == pytest.approx(expected)
    assert fooling_rate(tiny_model, x, x) == 0.0


def test_predict_classes_is_a_deprecated_name_of_predict_labels(tiny_model, tiny_data):
    from robustmask.evaluation import predict_classes
    from robustmask.predictions import predict_labels

    x, _ = tiny_data
    with pytest.warns(DeprecationWarning) as caught:
        labels = predict_classes(tiny_model, x, batch_size=7)
    message = "robustmask.evaluation.predict_classes is deprecated; use robustmask.predictions.predict_labels"
    assert [str(w.message) for w in caught] == [message]
    assert caught[0].filename == __file__  # points at the caller's line
    np.testing.assert_array_equal(labels, _predicted(tiny_model, x))
    np.testing.assert_array_equal(labels, predict_labels(tiny_model, x))


def test_fooling_rate_refuses_mismatched_inputs(tiny_model, tiny_data):
    x, _ = tiny_data
    with pytest.raises(DataError) as error:
        fooling_rate(tiny_model, x, x[:-1])
    assert "x_adv" in _one_line(error)
    # Each refusal names the argument that is wrong.
    with pytest.raises(DataError) as error:
        fooling_rate(tiny_model, x, np.full_like(x, np.nan))
    assert _one_line(error).startswith("x_adv holds")
    with pytest.raises(DataError) as error:
        fooling_rate(tiny_model, np.full_like(x, np.nan), x)
    assert _one_line(error).startswith("x holds")


# ---------------------------------------------------------------------------------------------- transfer table
def test_transfer_table_rows_match_independent_computations(tiny_model, tiny_data):
    x, y = tiny_data
    x_unseen, _ = make_images(10, seed=3)
    pattern = np.random.default_rng(1).uniform(-0.3, 0.3, x.shape[1:]).astype(np.float32)
    table = transfer_table(pattern, tiny_model, {"train": (x, y), "frames": x_unseen}, batch_size=16)

    assert list(table.columns) == list(TRANSFER_COLUMNS)
    assert list(table["Set"]) == ["train", "frames"]
    for row, (images, labels) in zip(table.itertuples(index=False), [(x, y), (x_unseen, None)]):
        adv = np.clip(images + pattern, 0.0, 1.0)
        clean, fooled = _predicted(tiny_model, images), _predicted(tiny_model, adv)
        assert row.n == len(images)
        assert row[4] == pytest.approx(100 * np.mean(fooled != clean))  # Fooling rate (%)
        assert row[5] == pytest.approx(np.mean(np.abs(adv - images).reshape(len(images), -1).max(axis=1)))
        if labels is None:
            assert np.isnan(row[2]) and np.isnan(row[3])
        else:
            assert row[2] == pytest.approx(100 * np.mean(clean == labels))
            assert row[3] == pytest.approx(100 * np.mean(fooled == labels))
    assert table["Mean L-inf"].max() <= 0.3 + 1e-6


def test_transfer_table_resizes_a_pattern_and_uses_apply(tiny_model, tiny_data):
    x, y = tiny_data
    constant = np.full((5, 7, 3), 0.2, np.float32)  # any resize of a constant is the same constant
    resized = transfer_table(constant, tiny_model, {"s": (x, y)})
    direct = transfer_table(np.full(x.shape[1:], 0.2, np.float32), tiny_model, {"s": (x, y)})
    pd.testing.assert_frame_equal(resized, direct)

    class Blackout:  # an attack-like object: apply(x) -> x_adv
        def apply(self, images):
            out = images.copy()
            out[:, :6] = 0.0
            return out

    table = transfer_table(Blackout(), tiny_model, {"s": x})
    adv = Blackout().apply(x)
    assert table.loc[0, "Fooling rate (%)"] == pytest.approx(
        100 * np.mean(_predicted(tiny_model, adv) != _predicted(tiny_model, x))
    )


def _bilinear(pattern: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (TF2's ``tf.image.resize``), written out in NumPy."""

    def axis(size_in: int, size_out: int):
        source = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, size_in - 1), (source - low)

    r0, r1, wr = axis(pattern.shape[0], height)
    c0, c1, wc = axis(pattern.shape[1], width)
    rows = pattern[r0] * (1 - wr)[:, None, None] + pattern[r1] * wr[:, None, None]
    return rows[:, c0] * (1 - wc)[None, :, None] + rows[:, c1] * wc[None, :, None]


def test_apply_perturbation_resizes_a_varied_pattern_to_non_square_images():
    from robustmask.evaluation.transfer import apply_perturbation

    rng = np.random.default_rng(4)
    pattern = rng.uniform(-0.3, 0.3, (5, 7, 3)).astype(np.float32)  # varied: no mean colour will do
    for height, width in ((10, 16), (16, 9), (3, 4)):  # up, up with the sides swapped, down
        x = rng.uniform(0.0, 1.0, (4, height, width, 3)).astype(np.float32)
        expected = np.clip(x + _bilinear(pattern, height, width), 0.0, 1.0)
        for given in (pattern, pattern[None]):  # (H, W, C) or (1, H, W, C)
            adv = apply_perturbation(given, x)
            assert adv.shape == x.shape
            np.testing.assert_allclose(adv, expected, atol=1e-5)
    same = rng.uniform(-0.3, 0.3, (6, 11, 3)).astype(np.float32)
    x = rng.uniform(0.1, 0.9, (2, 6, 11, 3)).astype(np.float32)
    np.testing.assert_allclose(apply_perturbation(same, x, clip=(0.1, 0.9)), np.clip(x + same, 0.1, 0.9))


def test_transfer_table_target_rates(tiny_model, tiny_data):
    x, y = tiny_data
    pattern = np.random.default_rng(2).uniform(-0.4, 0.4, x.shape[1:]).astype(np.float32)
    table = transfer_table(pattern, tiny_model, {"s": (x, y)}, target=2)
    assert list(table.columns) == list(TRANSFER_COLUMNS + TARGET_COLUMNS)
    clean, fooled = _predicted(tiny_model, x), _predicted(tiny_model, np.clip(x + pattern, 0, 1))
    assert table.loc[0, "Clean target rate (%)"] == pytest.approx(100 * np.mean(clean == 2))
    assert table.loc[0, "Target rate (%)"] == pytest.approx(100 * np.mean(fooled == 2))
    # A bright square in class 2's corner pushes images to class 2: before and after now differ.
    half = x.shape[1] // 2
    pushing = np.zeros(x.shape[1:], np.float32)
    pushing[half:, :half] = 0.6
    table = transfer_table(pushing, tiny_model, {"s": (x, y)}, target=2)
    clean, pushed = _predicted(tiny_model, x), _predicted(tiny_model, np.clip(x + pushing, 0, 1))
    assert np.mean(pushed == 2) > np.mean(clean == 2) + 0.2
    assert table.loc[0, "Clean target rate (%)"] == pytest.approx(100 * np.mean(clean == 2))
    assert table.loc[0, "Target rate (%)"] == pytest.approx(100 * np.mean(pushed == 2))
    with pytest.raises(RobustmaskError, match="not a class") as error:
        transfer_table(pattern, tiny_model, {"s": x}, target=3)
    _one_line(error)


@pytest.mark.parametrize(
    "perturbation, sets, match",
    [
        (np.zeros((12, 12, 3)), {}, "non-empty mapping"),
        (np.zeros((12, 12, 3)), {"a": np.full((2, 12, 12, 3), 2.0, np.float32)}, "outside the valid range"),
        (np.zeros((12, 12, 1)), {"a": np.zeros((2, 12, 12, 3), np.float32)}, "needs images"),
        (np.zeros((12, 12)), {"a": np.zeros((2, 12, 12, 3), np.float32)}, "finite .H, W, C. array"),
        ("noise", {"a": np.zeros((2, 12, 12, 3), np.float32)}, "apply|pattern"),
        (np.zeros((12, 12, 3)), {"a": (np.zeros((2, 12, 12, 3), np.float32), [0], [1])}, "tuple of 3"),
        (np.zeros((12, 12, 3)), {"a": (np.zeros((2, 12, 12, 3), np.float32), [0, 7])}, "label 7"),
    ],
)
def test_transfer_table_bad_inputs_give_one_line_errors(tiny_model, perturbation, sets, match):
    with pytest.raises(RobustmaskError, match=match) as error:
        transfer_table(perturbation, tiny_model, sets)
    _one_line(error)


def _set(value):
    return {"a": np.full((2, 12, 12, 3), value, np.float32)}


@pytest.mark.parametrize(
    "sets, options, message",
    [
        ({}, {}, "sets must be a non-empty mapping of name -> images or (images, labels)"),
        (
            _set(1.5),
            {},
            "set 'a' has values in [1.5, 1.5], outside the valid range [0, 1] (scale 8-bit images: divide by 255)",
        ),
        (
            _set(-0.5),
            {},
            "set 'a' has values in [-0.5, -0.5], outside the valid range [0, 1] (scale 8-bit images: divide by 255)",
        ),
        (_set(np.nan), {}, "set 'a' holds 864 NaN/inf values (first in example 0)"),
        (_set(0.5), {"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        (_set(0.5), {"target": -1}, "target must be a non-negative integer, got -1"),
        (_set(0.5), {"target": 3}, "target 3 is not a class of the model (0..2)"),
        ({"": _set(0.5)["a"]}, {}, "set names must be non-empty strings, got ''"),
        ({5: _set(0.5)["a"]}, {}, "set names must be non-empty strings, got 5"),
        (
            {"a": (_set(0.5)["a"], [0, 7])},
            {},
            "labels of 'a' holds label 7 but the model has 3 classes (labels 0..2)",
        ),
    ],
)
def test_transfer_table_refusals_name_the_set_and_the_fix(tiny_model, sets, options, message):
    with pytest.raises(RobustmaskError) as error:
        transfer_table(np.zeros((12, 12, 3), np.float32), tiny_model, sets, **options)
    assert str(error.value) == message


def test_transfer_table_accuracies_are_shares_of_the_given_labels(tiny_model, tiny_data):
    x, y = tiny_data
    wrong = y.copy()
    wrong[::3] = (wrong[::3] + 1) % 3  # a third of the labels moved: accuracies well below 100%
    pattern = np.random.default_rng(2).uniform(-0.2, 0.2, x.shape[1:]).astype(np.float32)
    row = transfer_table(pattern, tiny_model, {"s": (x, wrong)}).iloc[0]
    clean, fooled = _predicted(tiny_model, x), _predicted(tiny_model, np.clip(x + pattern, 0, 1))
    assert row["Clean accuracy (%)"] == pytest.approx(100 * np.mean(clean == wrong))
    assert row["Adversarial accuracy (%)"] == pytest.approx(100 * np.mean(fooled == wrong))
    assert row["Clean accuracy (%)"] < 90


# ---------------------------------------------------------------------------------------------- the transfer claim
def test_a_universal_perturbation_transfers_to_unseen_images_better_than_noise(tiny_model, tiny_data):
    x, _ = tiny_data
    x_unseen, _ = make_images(40, seed=1)  # other noise, other class order: images it never saw
    eps = 0.1
    uap = SGDUniversalPerturbation(epochs=5)
    x_adv = uap(tiny_model, x, eps=eps)

    assert uap.perturbation is not None and uap.perturbation.shape == x.shape[1:]
    assert np.abs(uap.perturbation).max() <= eps + 1e-7
    np.testing.assert_allclose(x_adv, uap.apply(x))
    assert uap.fooling_rate == pytest.approx(fooling_rate(tiny_model, x, x_adv))

    transferred = fooling_rate(tiny_model, x_unseen, uap.apply(x_unseen))
    rng = np.random.default_rng(0)
    noise = [  # random sign noise: the random pattern with the largest L-inf-bounded energy
        fooling_rate(tiny_model, x_unseen, np.clip(x_unseen + rng.choice([-eps, eps], x.shape[1:]), 0, 1))
        for _ in range(5)
    ]
    assert transferred >= max(noise) + 0.2, (transferred, noise)


def test_sgd_universal_perturbation_targeted_and_l2(tiny_model, tiny_data):
    x, _ = tiny_data
    before = np.mean(_predicted(tiny_model, x) == 0)
    uap = SGDUniversalPerturbation(epochs=5, targeted=True)
    x_adv = uap(tiny_model, x, np.zeros(len(x), np.int64), eps=0.2)
    assert np.mean(_predicted(tiny_model, x_adv) == 0) > before + 0.2  # pushed towards class 0
    assert np.abs(uap.perturbation).max() <= 0.2 + 1e-7

    l2 = SGDUniversalPerturbation(epochs=2, norm=2)
    l2(tiny_model, x, eps=1.0)
    assert np.linalg.norm(l2.perturbation) <= 1.0 + 1e-5
    assert np.linalg.norm(l2.perturbation) > 0.5  # it used its budget


def test_sgd_universal_perturbation_checks_its_arguments(tiny_model, tiny_data):
    x, _ = tiny_data
    for kwargs in (
        {"epochs": 0},
        {"rel_stepsize": -1.0},
        {"abs_stepsize": 0.0},
        {"loss_cap": 0.0},
        {"seed": -1},
    ):
        with pytest.raises(AttackError) as error:
            SGDUniversalPerturbation(**kwargs)
        _one_line(error)
    uap = SGDUniversalPerturbation(epochs=1)
    with pytest.raises(AttackError, match="call the attack"):
        uap.apply(x)
    uap(tiny_model, x[:8], eps=0.05)
    with pytest.raises(AttackError, match="do not match"):
        uap.apply(np.zeros((2, 8, 8, 3), np.float32))


# ---------------------------------------------------------------------------------------------- printable files
def test_printable_patch_has_its_print_size_and_dpi_and_reads_back(tmp_path):
    patch = np.random.default_rng(0).uniform(size=(9, 14, 3)).astype(np.float32)
    path = save_printable_patch(patch, tmp_path / "patch.png", width_cm=6.0, dpi=300)
    width = round(6.0 / 2.54 * 300)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size == (width, round(width * 9 / 14))
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert print_size_cm(path)[0] == pytest.approx(6.0, abs=0.01)
    np.testing.assert_allclose(load_patch(path), patch, atol=0.5 / 255 + 1e-6)  # the learnt patch, 8-bit
    small = load_patch(path, size=(3, 5))
    assert small.shape == (3, 5, 3) and small.dtype == np.float32 and 0 <= small.min() <= small.max() <= 1
    for size in ((0, 5), (3,), 4):
        with pytest.raises(DataError, match="size") as error:
            load_patch(path, size=size)
        _one_line(error)


def test_printable_patch_refuses_to_overwrite_and_bad_inputs(tmp_path):
    patch = np.full((4, 4, 3), 0.5, np.float32)
    path = tmp_path / "patch.png"
    save_printable_patch(patch, path, width_cm=1.0)
    before = path.read_bytes()
    with pytest.raises(RobustmaskError, match="exists") as error:
        save_printable_patch(np.zeros((4, 4, 3)), path, width_cm=1.0)
    _one_line(error)
    assert path.read_bytes() == before
    save_printable_patch(np.zeros((4, 4, 3)), path, width_cm=1.0, overwrite=True)
    assert load_patch(path).max() == 0.0
    for bad, kwargs in [
        (np.full((4, 4, 3), 2.0), {}),
        (np.zeros((4, 4)), {}),
        (np.zeros((4, 4, 3)), {"width_cm": 0.0}),
        (np.zeros((4, 4, 3)), {"dpi": 0}),
    ]:
        with pytest.raises(RobustmaskError) as error:
            save_printable_patch(bad, tmp_path / "bad.png", **kwargs)
        _one_line(error)
    with pytest.raises(RobustmaskError, match=r"\.png"):
        save_printable_patch(patch, tmp_path / "patch.jpg")
    with pytest.raises(DataError, match="no such"):
        load_patch(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="not a readable image"):
        load_patch(tmp_path / "text.png")
    assert not (tmp_path / "bad.png").exists()


def test_universal_perturbation_file_round_trips_and_refuses_bad_input(tmp_path):
    pattern = np.random.default_rng(0).uniform(-0.05, 0.05, (1, 12, 10, 3))
    path = save_universal_perturbation(pattern, tmp_path / "universal.npy")
    loaded = load_universal_perturbation(path)
    assert loaded.dtype == np.float32 and loaded.shape == (12, 10, 3)
    np.testing.assert_array_equal(loaded, pattern[0].astype(np.float32))
    assert np.load(path).dtype == np.float32  # the plain format another program reads

    with pytest.raises(RobustmaskError, match="exists"):
        save_universal_perturbation(pattern, path)
    save_universal_perturbation(np.zeros((2, 2, 3)), path, overwrite=True)
    assert load_universal_perturbation(path).shape == (2, 2, 3)
    for bad in (np.full((2, 2, 3), 1.5), np.full((2, 2, 3), np.nan), np.zeros((2, 2)), np.zeros((2, 2, 4))):
        with pytest.raises(DataError) as error:
            save_universal_perturbation(bad, tmp_path / "bad.npy")
        _one_line(error)
    np.save(tmp_path / "ints.npy", np.zeros((2, 2, 3), np.int64))
    (tmp_path / "junk.npy").write_text("junk")
    for name in ("ints.npy", "junk.npy", "missing.npy"):
        with pytest.raises(DataError) as error:
            load_universal_perturbation(tmp_path / name)
        _one_line(error)


def test_the_camera_pipeline_reads_both_files(tmp_path):
    """``robustmask scan --universal FILE.npy --patch FILE.png`` reads exactly these two formats."""
    from robustmask.camera import video

    pattern = np.random.default_rng(0).uniform(-0.05, 0.05, (16, 16, 3)).astype(np.float32)
    patch = np.random.default_rng(1).uniform(size=(5, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        video.load_universal(save_universal_perturbation(pattern, tmp_path / "u.npy")), pattern
    )
    path = save_printable_patch(patch, tmp_path / "p.png", width_cm=2.0, dpi=100)
    # One reader: the camera reads the patch at its learnt size (scan scales it onto each face box).
    assert video.load_patch is load_patch
    np.testing.assert_allclose(video.load_patch(path), patch, atol=0.5 / 255 + 1e-6)


# ---------------------------------------------------------------------------------------------- the command
def test_universal_command_writes_its_files_and_refuses_a_filled_folder(tmp_path, capsys):
    from robustmask.cli.main import main

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, image in enumerate(make_images(1, size=20)[0]):
        Image.fromarray((image * 255).astype(np.uint8)).save(frames / f"frame{i}.png")
    out = tmp_path / "out"
    argv = ["universal", "--out", str(out), "--image-size", "16", "--n-per-class", "20", "--epochs", "2"]
    argv += ["--n-train", "20", "--n-test", "10", "--uap-epochs", "2", "--patch-steps", "2", "--eps", "0.1"]
    argv += ["--frames", str(frames), "--width-cm", "4", "--dpi", "100"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "figures",
        "patch.png",
        "report.html",
        "summary.json",
        "tables",
        "universal.npy",
    ]

    table = pd.read_csv(out / "tables" / "transfer.csv")
    assert list(table.columns) == ["Attack", *TRANSFER_COLUMNS, *TARGET_COLUMNS]
    assert len(table) == 4 * 3  # universal, noise, patch, random patch x train, unseen, frames
    patched = table["Attack"].isin(["mask patch (target with_mask)", "random patch"])
    assert patched.sum() == 6 and table.loc[patched, "Target rate (%)"].notna().all()
    assert table.loc[~patched, "Target rate (%)"].isna().all()
    assert set(table["Set"]) == {"train", "unseen faces", "video frames"}
    assert table.loc[table["Set"] == "video frames", "Clean accuracy (%)"].isna().all()
    assert (table.loc[table["Set"] == "unseen faces", "n"] == 10).all()
    assert np.abs(load_universal_perturbation(out / "universal.npy")).max() <= 0.1 + 1e-7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["patch"]["print_width_cm"] == pytest.approx(4.0, abs=0.02)
    assert summary["patch"]["dpi"] == 100 and summary["patch"]["target"] == "with_mask"
    assert len(summary["fooling_rates_percent"]) == 12 and len(summary["target_rates_percent"]) == 6
    with Image.open(out / "patch.png") as im:
        assert im.size[0] == round(4 / 2.54 * 100)
    assert load_patch(out / "patch.png").shape[:2] == tuple(summary["patch"]["pixels"])
    assert summary["kind"] == "universal" and summary["sections"][0]["tables"][0]["name"] == "transfer"
    for attack, name, rate in zip(table["Attack"], table["Set"], table["Fooling rate (%)"]):
        assert summary["fooling_rates_percent"][f"{attack} / {name}"] == round(rate, 2)
    # report.html names the numbers: every fooling rate in its table, the unseen faces' in its text
    page = (out / "report.html").read_text()
    shown = re.search(r'<table[^>]*id="table-transfer".*?</table>', page, re.S).group(0)
    cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", shown)]
    width = len(table.columns)
    assert len(cells) == width * len(table)
    rate_at = list(table.columns).index("Fooling rate (%)")
    assert [cells[i * width + rate_at] for i in range(len(table))] == [
        f"{r:.2f}" for r in table["Fooling rate (%)"]
    ]
    unseen = table[table["Set"] == "unseen faces"]
    assert (
        html.escape(
            "On the unseen faces: "
            + "; ".join(f"{a} {r:.1f}%" for a, r in zip(unseen["Attack"], unseen["Fooling rate (%)"]))
        )
        in page
    )

    before = (out / "summary.json").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2  # refused before any work
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert (out / "summary.json").read_bytes() == before
    assert main(["universal", "--out", str(tmp_path / "other"), "--eps", "0"]) == 2
    assert "--eps" in capsys.readouterr().err
    bad_target = [
        "universal",
        "--out",
        str(tmp_path / "other"),
        "--image-size",
        "16",
        "--patch-target",
        "hat",
    ]
    assert main(bad_target) == 2
    assert "with_mask" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_universal_command_on_an_image_folder(tmp_path, capsys):
    from robustmask.cli.main import main
    from robustmask.datasets import write_synthetic_face_mask_directory

    data = write_synthetic_face_mask_directory(tmp_path / "faces", n_per_class=15, image_size=16)
    base = ["universal", "--data", str(data), "--image-size", "16", "--epochs", "1", "--patch-steps", "1"]
    assert main(base + ["--out", str(tmp_path / "a"), "--n-train", "40", "--n-test", "10"]) == 2
    assert "45 images" in capsys.readouterr().err
    out = tmp_path / "b"
    assert main(base + ["--out", str(out), "--n-train", "20", "--n-test", "10", "--uap-epochs", "1"]) == 0
    table = pd.read_csv(out / "tables" / "transfer.csv")
    assert set(table.loc[table["Set"] == "train", "n"]) == {20}
    assert set(table.loc[table["Set"] == "unseen faces", "n"]) == {10}
    # The model trained here sees every image but the 10 unseen ones.
    assert "on 35 images" in json.loads((out / "summary.json").read_text())["model"]


def test_apply_perturbation_adds_a_float32_pattern_however_it_is_given():
    x = np.full((2, 6, 4, 3), 0.5)  # float64 images and pattern: the sum is float32, as the attacks'
    pattern = np.full((6, 4, 3), 0.25)
    added = apply_perturbation(pattern, x)
    assert added.dtype == np.float32
    np.testing.assert_array_equal(added, np.full(x.shape, 0.75, np.float32))
    for same in (tf.constant(pattern), pattern[None], np.full((1, 4, 3), 0.25)):  # one pixel high: resized
        np.testing.assert_array_equal(apply_perturbation(same, x), added)
    applied = apply_perturbation(_AddsInFloat64(), x.astype(np.float32))  # an attack's apply, any dtype
    assert applied.dtype == np.float32 and np.allclose(applied, 0.75)
    # The caller's clip range is the images' valid range too.
    np.testing.assert_allclose(apply_perturbation(pattern, x - 1.0, clip=(-1.0, 1.0)), -0.25)
    with pytest.raises(DataError, match="outside the valid range"):
        apply_perturbation(pattern, x + 1.0)


class _AddsInFloat64:
    def apply(self, x):
        return x.astype(np.float64) + 0.25


class _DropsAnImage:
    def apply(self, x):
        return x[:1]


@pytest.mark.parametrize(
    "perturbation, error, message",
    [
        (
            _DropsAnImage(),
            RobustmaskError,
            "_DropsAnImage.apply returned shape (1, 6, 4, 3) for images of shape (2, 6, 4, 3)",
        ),
        (
            np.zeros((6, 4, 1)),
            DataError,
            "a pattern of shape (6, 4, 1) needs images (n, H, W, 1), got (2, 6, 4, 3)",
        ),
        (
            "noise",
            RobustmaskError,
            "perturbation must have an apply(x) method or be a NumPy pattern (H, W, C), got str",
        ),
        (
            np.full((6, 4, 3), np.nan),
            DataError,
            "a perturbation pattern must be a finite (H, W, C) array, got shape (6, 4, 3)",
        ),
    ],
)
def test_apply_perturbation_refusals_name_the_problem(perturbation, error, message):
    with pytest.raises(error) as caught:
        apply_perturbation(perturbation, np.full((2, 6, 4, 3), 0.5, np.float32))
    assert str(caught.value) == message
