"""Tests of robustmask.datasets: the synthetic generator, its folder writer and the folder loader."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robustmask.datasets import (
    CLASS_NAMES,
    SUBCATEGORIES,
    FaceMaskData,
    load_face_mask_directory,
    load_image,
    synthetic_face_masks,
    write_synthetic_face_mask_directory,
)
from robustmask.errors import DataError, RobustmaskError

PNG_TOLERANCE = 0.5 / 255 + 1e-6  # 8-bit quantisation of a [0, 1] float


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _rgb(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _make_tree(root: Path, per_class: int = 4, size: int = 16) -> None:
    """A small valid data set: one folder per class, images at two depths."""
    for c, name in enumerate(CLASS_NAMES):
        for i in range(per_class):
            sub = root / name / ("a" if i % 2 else "b/c")
            _save(sub / f"img{i}.png", _rgb(100 * c + i, size))


def _index_of(path: str) -> int:
    return int(re.search(r"img_(\d+)\.png$", path).group(1)) - 1


# ------------------------------------------------------------------------------------------------
# synthetic_face_masks
# ------------------------------------------------------------------------------------------------


def test_synthetic_shapes_dtype_range_and_exact_class_balance():
    x, y, sub = synthetic_face_masks(n_per_class=20, image_size=32, seed=0, return_subcategories=True)
    assert x.shape == (60, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (60,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y, minlength=3).tolist() == [20, 20, 20]
    assert not np.all(np.diff(y) >= 0), "classes must be shuffled, not in blocks"
    for label, name in enumerate(CLASS_NAMES):
        assert set(sub[y == label]) <= set(SUBCATEGORIES[name])
    assert x.reshape(60, -1).std(axis=1).min() > 0.02, "no blank images"


def test_synthetic_subcategory_ratios_follow_the_paper():
    _, y, sub = synthetic_face_masks(n_per_class=200, image_size=8, seed=3, return_subcategories=True)
    incorrect = sub[y == CLASS_NAMES.index("incorrect_mask")]
    assert np.sum(incorrect == "mask_on_chin") == np.sum(incorrect == "mask_on_mouth_chin") == 100
    with_mask = sub[y == CLASS_NAMES.index("with_mask")]
    without = sub[y == CLASS_NAMES.index("without_mask")]
    assert np.sum(with_mask == "complex") == round(200 * 789 / 4789)  # 33
    assert np.sum(without == "complex") == round(200 * 746 / 4746)  # 31


def test_synthetic_is_deterministic_for_a_seed_and_differs_across_seeds():
    x1, y1 = synthetic_face_masks(10, 32, seed=7)
    x2, y2 = synthetic_face_masks(10, 32, seed=7)
    x3, y3 = synthetic_face_masks(10, 32, seed=8)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    assert np.abs(x1 - x3).mean() > 0.05


@pytest.mark.parametrize("size", [32, 50, 224])
def test_synthetic_works_across_image_sizes(size):
    x, y = synthetic_face_masks(n_per_class=2, image_size=size, seed=1)
    assert x.shape == (6, size, size, 3)
    assert 0.0 <= x.min() and x.max() <= 1.0
    # Drawn in relative coordinates: the same scene at two sizes looks alike once downsampled.
    small, _ = synthetic_face_masks(n_per_class=2, image_size=32, seed=1)
    if size % 32 == 0:
        k = size // 32
        pooled = x.reshape(6, 32, k, 32, k, 3).mean((2, 4))
        assert np.abs(pooled - small).mean() < 0.06


def test_synthetic_is_fast():
    start = time.perf_counter()
    synthetic_face_masks(n_per_class=100, image_size=64, seed=0)
    elapsed = time.perf_counter() - start
    # About 0.3 s on an idle core (3,000 images take a few seconds); the bound allows for a busy CI box.
    assert elapsed < 10.0, f"300 images of 64 px took {elapsed:.1f} s"


def test_synthetic_classes_are_not_separable_by_mean_colour_but_learnable_from_pixels():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    x, y = synthetic_face_masks(n_per_class=200, image_size=32, seed=1)

    def accuracy(features, c=1.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        with threadpool_limits(1):  # BLAS threads only thrash on such small problems
            return cross_val_score(model, features, y, cv=4).mean()  # held-out folds

    mean_rgb = x.mean(axis=(1, 2))
    lower_rgb = x[:, 16:].mean(axis=(1, 2))
    pixels = x.reshape(len(x), 16, 2, 16, 2, 3).mean(axis=(2, 4)).reshape(len(x), -1)  # 16 x 16
    assert accuracy(mean_rgb) < 0.6
    assert accuracy(lower_rgb) < 0.6
    assert accuracy(np.hstack([mean_rgb, lower_rgb])) < 0.6
    assert accuracy(pixels, c=0.05) > 0.62  # chance is 1/3


@pytest.mark.parametrize("kwargs", [{"n_per_class": 0}, {"image_size": 4}, {"n_per_class": 2.5}])
def test_synthetic_rejects_bad_arguments(kwargs):
    with pytest.raises(RobustmaskError, match="must be an integer"):
        synthetic_face_masks(**kwargs)


# ------------------------------------------------------------------------------------------------
# write_synthetic_face_mask_directory
# ------------------------------------------------------------------------------------------------


def test_written_layout_mirrors_the_kaggle_set(tmp_path):
    root = write_synthetic_face_mask_directory(tmp_path / "ds", n_per_class=70, image_size=24, seed=0)
    assert root == tmp_path / "ds"
    files = sorted(root.rglob("*"))
    pngs = [f for f in files if f.is_file()]
    assert len(pngs) == 210 and all(f.suffix == ".png" for f in pngs)
    assert sorted(p.name for p in root.iterdir()) == list(CLASS_NAMES)
    for f in pngs:
        cls, sub, part, name = f.relative_to(root).parts  # depth 3 below the root, always
        assert sub in SUBCATEGORIES[cls] and part.startswith("part_") and name.startswith("img_")
    # More than one nested folder in a sub-category (50 images per folder).
    assert (root / "incorrect_mask" / "mask_on_chin" / "part_01").is_dir()
    assert len(list((root / "with_mask" / "simple").iterdir())) == 2
    assert not any(f.name.startswith(".") for f in files), "no temporary files left behind"


def test_writer_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    root = tmp_path / "ds"
    write_synthetic_face_mask_directory(root, n_per_class=10, image_size=16)
    (root / "README.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"refusing to write .* non-empty folder .*overwrite=True"):
        write_synthetic_face_mask_directory(root, n_per_class=4, image_size=16)
    with pytest.raises(RobustmaskError, match="n_per_class"):
        write_synthetic_face_mask_directory(root, n_per_class=0, overwrite=True)
    assert len(list(root.rglob("*.png"))) == 30, "bad arguments delete nothing"
    write_synthetic_face_mask_directory(root, n_per_class=4, image_size=16, overwrite=True)
    assert len(list(root.rglob("*.png"))) == 12, "stale images of the earlier write are gone"
    assert (root / "README.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="is a file"):
        write_synthetic_face_mask_directory(root / "README.txt", n_per_class=1)


def test_write_then_load_round_trip_recovers_labels_and_pixels(tmp_path):
    x, y = synthetic_face_masks(n_per_class=20, image_size=40, seed=5)
    root = write_synthetic_face_mask_directory(tmp_path / "ds", n_per_class=20, image_size=40, seed=5)
    data = load_face_mask_directory(root, image_size=40, split=0.2, seed=0)
    assert data.class_names == CLASS_NAMES
    assert len(data.y_train) + len(data.y_test) == 60 and not data.skipped and not data.converted
    for xs, ys, paths in (
        (data.x_train, data.y_train, data.paths_train),
        (data.x_test, data.y_test, data.paths_test),
    ):
        rows = np.array([_index_of(p) for p in paths])
        assert np.array_equal(ys, y[rows])
        assert np.abs(xs - x[rows]).max() <= PNG_TOLERANCE


# ------------------------------------------------------------------------------------------------
# load_face_mask_directory: layout, split, class names
# ------------------------------------------------------------------------------------------------


def test_loader_takes_the_class_from_the_top_folder_at_any_depth(tmp_path):
    deep = tmp_path / "with_mask" / "complex" / "beard" / "2021" / "batch"
    _save(deep / "deep.png", _rgb(1))
    _save(tmp_path / "with_mask" / "shallow.png", _rgb(2))
    _save(tmp_path / "without_mask" / "x" / "y.png", _rgb(3))
    data = load_face_mask_directory(tmp_path, image_size=16, split=0.0)
    assert data.class_names == ("with_mask", "without_mask")
    labels = dict(zip(data.paths_train, data.y_train.tolist()))
    assert labels == {
        str(deep / "deep.png"): 0,
        str(tmp_path / "with_mask" / "shallow.png"): 0,
        str(tmp_path / "without_mask" / "x" / "y.png"): 1,
    }
    assert data.x_test.shape == (0, 16, 16, 3)


def test_split_is_stratified_reproducible_and_disjoint(tmp_path):
    root = write_synthetic_face_mask_directory(tmp_path / "ds", n_per_class=40, image_size=16, seed=2)
    a = load_face_mask_directory(root, image_size=16, split=0.25, seed=1)
    b = load_face_mask_directory(root, image_size=16, split=0.25, seed=1)
    c = load_face_mask_directory(root, image_size=16, split=0.25, seed=2)
    assert np.bincount(a.y_test).tolist() == [10, 10, 10]
    assert np.bincount(a.y_train).tolist() == [30, 30, 30]
    assert a.paths_test == b.paths_test and np.array_equal(a.x_train, b.x_train)
    assert set(a.paths_test) != set(c.paths_test)
    assert not set(a.paths_train) & set(a.paths_test)
    assert len(set(a.paths_train) | set(a.paths_test)) == 120


def test_default_split_is_the_papers_seven_percent(tmp_path):
    _make_tree(tmp_path, per_class=30)
    data = load_face_mask_directory(tmp_path, image_size=8)
    assert np.bincount(data.y_test).tolist() == [2, 2, 2]  # round(0.07 * 30)
    assert data.x_train.shape == (84, 8, 8, 3)


def test_class_names_fix_order_and_subset(tmp_path):
    _make_tree(tmp_path)
    data = load_face_mask_directory(
        tmp_path, image_size=8, split=0, class_names=["without_mask", "with_mask"]
    )
    assert data.class_names == ("without_mask", "with_mask")
    for path, label in zip(data.paths_train, data.y_train):
        assert Path(path).relative_to(tmp_path).parts[0] == data.class_names[label]
    assert len(data.y_train) == 8
    with pytest.raises(DataError, match=r"class folder\(s\) no_mask missing in .*found: incorrect_mask"):
        load_face_mask_directory(tmp_path, class_names=["with_mask", "no_mask"])


def test_hidden_files_and_archive_folders_are_ignored_silently(tmp_path, recwarn):
    _make_tree(tmp_path)
    (tmp_path / "with_mask" / ".DS_Store").write_bytes(b"\x00\x01junk")
    _save(tmp_path / "with_mask" / ".ipynb_checkpoints" / "copy.png", _rgb(9))
    _save(tmp_path / "__MACOSX" / "with_mask" / "._img0.png", _rgb(9))
    _save(tmp_path / ".hidden_class" / "img.png", _rgb(9))
    data = load_face_mask_directory(tmp_path, image_size=8, split=0)
    assert data.class_names == CLASS_NAMES and len(data.y_train) == 12 and data.skipped == []
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_threaded_and_single_threaded_decoding_agree(tmp_path):
    _make_tree(tmp_path, per_class=6)
    one = load_face_mask_directory(tmp_path, image_size=8, split=0.2, workers=1)
    many = load_face_mask_directory(tmp_path, image_size=8, split=0.2, workers=3)
    assert one.paths_train == many.paths_train and np.array_equal(one.x_train, many.x_train)
    assert np.array_equal(one.x_test, many.x_test)


def test_uint8_dtype_keeps_raw_values(tmp_path):
    _make_tree(tmp_path, size=8)
    f = load_face_mask_directory(tmp_path, image_size=8, split=0, seed=0)
    u = load_face_mask_directory(tmp_path, image_size=8, split=0, seed=0, dtype="uint8")
    assert u.x_train.dtype == np.uint8 and u.paths_train == f.paths_train
    assert np.array_equal(u.x_train, np.round(f.x_train * 255).astype(np.uint8))
    assert "uint8" in u.summary()


def test_images_are_resized_to_image_size(tmp_path):
    _save(tmp_path / "with_mask" / "big.png", _rgb(0, 40))
    _save(tmp_path / "without_mask" / "wide.png", np.zeros((10, 30, 3), np.uint8))
    data = load_face_mask_directory(tmp_path, image_size=(12, 20), split=0)
    assert data.x_train.shape == (2, 12, 20, 3)


def test_summary_reports_counts_per_class_and_split(tmp_path):
    root = write_synthetic_face_mask_directory(tmp_path / "ds", n_per_class=10, image_size=16)
    (root / "with_mask" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning):
        data = load_face_mask_directory(root, image_size=16, split=0.2)
    assert isinstance(data, FaceMaskData)
    text = data.summary()
    assert "24 train and 6 test images of 16x16x3" in text
    assert "incorrect_mask 8/2, with_mask 8/2, without_mask 8/2" in text
    assert "1 file(s) skipped" in text and "\n" not in text


# ------------------------------------------------------------------------------------------------
# load_face_mask_directory: bad input
# ------------------------------------------------------------------------------------------------


def test_missing_path_and_file_path_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"^data folder .*nope does not exist$"):
        load_face_mask_directory(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"file\.png is not a folder"):
        load_face_mask_directory(tmp_path / "file.png")


def test_root_without_class_folders_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"no class folders in .*; it is empty"):
        load_face_mask_directory(tmp_path)
    _save(tmp_path / "a.png", _rgb(0))
    _save(tmp_path / "b.png", _rgb(1))
    expected = r"no class folders in .*it holds 2 file\(s\) directly.*one sub-folder per class"
    with pytest.raises(DataError, match=expected):
        load_face_mask_directory(tmp_path)


def test_a_class_without_readable_images_is_an_error_naming_it(tmp_path):
    _make_tree(tmp_path)
    empty = tmp_path / "extra_class" / "sub"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(
        DataError, match=r"class 'extra_class' has no readable image under .*extra_class \(1 file"
    ):
        load_face_mask_directory(tmp_path)
    (empty / "notes.txt").unlink()
    with pytest.raises(DataError, match=r"class 'extra_class' has no readable image under .*\(0 file"):
        load_face_mask_directory(tmp_path)


def test_corrupt_truncated_and_non_image_files_are_skipped_and_reported(tmp_path):
    _make_tree(tmp_path)
    bad_dir = tmp_path / "with_mask" / "bad"
    bad_dir.mkdir()
    (bad_dir / "notes.txt").write_text("a note")
    (bad_dir / "fake.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    png = _save(bad_dir / "truncated.png", _rgb(5, 64)).read_bytes()
    (bad_dir / "truncated.png").write_bytes(png[: len(png) // 2])
    jpg = _save(bad_dir / "truncated.jpg", _rgb(6, 64), quality=95).read_bytes()
    (bad_dir / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (tmp_path / "README.md").write_text("root files belong to no class")
    with pytest.warns(
        UserWarning, match=r"^skipped 5 file\(s\) under .*; and 2 more \(see FaceMaskData\.skipped\)$"
    ):
        data = load_face_mask_directory(tmp_path, image_size=16, split=0)
    reasons = {Path(p).name: why for p, why in data.skipped}
    assert set(reasons) == {"notes.txt", "fake.jpg", "truncated.png", "truncated.jpg", "README.md"}
    assert reasons["notes.txt"].startswith("not an image") and reasons["fake.jpg"].startswith("not an image")
    assert reasons["truncated.png"].startswith("corrupt or truncated")
    assert reasons["truncated.jpg"].startswith("corrupt or truncated")
    assert "not inside a class folder" in reasons["README.md"]
    assert all("\n" not in why for why in reasons.values())
    assert len(data.y_train) == 12 and data.x_train.shape == (12, 16, 16, 3)
    # Skipped rows are dropped in place: every kept row is still the image of its path.
    for row, path in zip(data.x_train, data.paths_train):
        assert np.array_equal(row, load_image(path, image_size=16))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": 1.0}, "split must be"),
        ({"split": -0.1}, "split must be"),
        ({"image_size": 0}, "image_size must be"),
        ({"image_size": (32, "a")}, "image_size must be"),
        ({"dtype": "float64"}, "dtype must be"),
        ({"class_names": []}, "class_names must be"),
        ({"class_names": ["with_mask", "with_mask"]}, "class_names must be"),
        ({"class_names": ["with_mask/sub"]}, "class_names must be"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, kwargs, message):
    _make_tree(tmp_path)
    with pytest.raises(RobustmaskError, match=message):
        load_face_mask_directory(tmp_path, **kwargs)


# ------------------------------------------------------------------------------------------------
# Colour-mode conversion, each checked against an independent computation
# ------------------------------------------------------------------------------------------------


def _load_single(tmp_path: Path, name: str, image: Image.Image, **save) -> tuple[np.ndarray, list]:
    """Put ``image`` as the only file of class ``a`` (class ``b`` gets a plain RGB image) and load it."""
    target = tmp_path / "a" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, **save)
    _save(tmp_path / "b" / "rgb.png", _rgb(0))
    data = load_face_mask_directory(tmp_path, image_size=16, split=0, dtype="uint8")
    row = data.paths_train.index(str(target))
    notes = [what for path, what in data.converted if path == str(target)]
    assert not [p for p, _ in data.converted if p.endswith("rgb.png")], "plain RGB is not 'converted'"
    return data.x_train[row].astype(int), notes


def test_grayscale_is_replicated_to_rgb(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    got, notes = _load_single(tmp_path, "grey.png", Image.fromarray(grey))
    assert np.array_equal(got, np.repeat(grey[..., None].astype(int), 3, axis=2))
    assert notes and "grayscale (L)" in notes[0]


def test_bilevel_is_black_and_white(tmp_path):
    bits = np.random.default_rng(2).random((16, 16)) > 0.5
    got, notes = _load_single(tmp_path, "bits.png", Image.fromarray(bits))
    assert np.array_equal(got, np.repeat(bits[..., None] * 255, 3, axis=2)) and notes


def test_rgba_is_composited_onto_black(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
    got, notes = _load_single(tmp_path, "rgba.png", Image.fromarray(rgba))
    expected = np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0))
    assert np.array_equal(got, expected)
    assert got[0, 0].tolist() == [0, 0, 0] and got[0, 1].tolist() == rgba[0, 1, :3].tolist()
    assert notes and "alpha composited onto black" in notes[0]


def test_la_is_grey_composited_onto_black(tmp_path):
    la = np.random.default_rng(4).integers(0, 256, (16, 16, 2), dtype=np.uint8)
    got, notes = _load_single(tmp_path, "la.png", Image.fromarray(la, "LA"))
    grey = np.round(la[..., 0] * (la[..., 1] / 255.0))
    assert np.array_equal(got, np.repeat(grey[..., None], 3, axis=2)) and "LA" in notes[0]


def test_palette_with_transparency_is_composited_and_plain_palette_is_looked_up(tmp_path):
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 8, (16, 16), dtype=np.uint8)
    image = Image.fromarray(index, "P")
    image.putpalette(palette.ravel().tolist())
    got, notes = _load_single(tmp_path / "t", "p_transparent.png", image, transparency=3)
    expected = palette[index].astype(int) * (index != 3)[..., None]
    assert np.array_equal(got, expected) and "P with transparency" in notes[0]
    got, notes = _load_single(tmp_path / "o", "p_opaque.png", image)
    assert np.array_equal(got, palette[index].astype(int)) and "P converted" in notes[0]


def test_cmyk_is_converted_to_rgb(tmp_path):
    cmyk = np.random.default_rng(6).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    got, notes = _load_single(tmp_path, "cmyk.tif", Image.frombytes("CMYK", (16, 16), cmyk.tobytes()))
    expected = (255 - cmyk[..., :3].astype(float)) * (255 - cmyk[..., 3:].astype(float)) / 255
    assert np.abs(got - expected).max() <= 1.0 and "CMYK" in notes[0]


def test_16_bit_is_scaled_by_its_actual_range_not_clipped(tmp_path):
    # 12-bit sensor data: 1000..4060. Clipping would give 255 everywhere, /65535 a black image.
    data = (1000 + 12 * np.arange(256)).astype(np.uint16).reshape(16, 16)
    got, notes = _load_single(tmp_path, "deep.png", Image.fromarray(data))
    expected = np.round((data - 1000.0) / (data.max() - 1000.0) * 255)
    assert np.array_equal(got[..., 0], expected) and np.array_equal(got[..., 0], got[..., 2])
    assert got.min() == 0 and got.max() == 255
    assert notes and "I;16" in notes[0] and "[1000, 4060]" in notes[0]


def test_32_bit_integer_and_float_images_are_scaled_by_range(tmp_path):
    ints = np.linspace(-70000, 90000, 256).astype(np.int32).reshape(16, 16)
    got, notes = _load_single(tmp_path / "i", "ints.tif", Image.fromarray(ints))
    expected = np.round((ints - ints.min()) / float(ints.max() - ints.min()) * 255)
    assert np.array_equal(got[..., 1], expected) and notes[0].startswith("I scaled")
    floats = np.linspace(-1, 3, 256, dtype=np.float32).reshape(16, 16)
    got, notes = _load_single(tmp_path / "f", "floats.tif", Image.fromarray(floats))
    assert np.array_equal(got[..., 0], np.round((floats + 1) / 4 * 255)) and notes[0].startswith("F scaled")


# ------------------------------------------------------------------------------------------------
# load_image
# ------------------------------------------------------------------------------------------------


def test_load_image_resizes_and_scales(tmp_path):
    pixels = _rgb(7, 20)
    path = _save(tmp_path / "face.png", pixels)
    same = load_image(path, image_size=None)
    assert same.dtype == np.float32 and same.shape == (20, 20, 3)
    assert np.allclose(same * 255, pixels, atol=1e-3)
    assert load_image(path, image_size=8).shape == (8, 8, 3)
    assert load_image(str(path), image_size=(6, 10), dtype="uint8").dtype == np.uint8


def test_load_image_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"^image file .*missing\.png does not exist$"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="is not a file"):
        load_image(tmp_path)
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(DataError, match=r"^cannot read image .*notes\.jpg: not an image"):
        load_image(tmp_path / "notes.jpg")
    png = _save(tmp_path / "cut.png", _rgb(8, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(png[:200])
    with pytest.raises(DataError, match=r"cut\.png: corrupt or truncated image") as info:
        load_image(tmp_path / "cut.png")
    assert "\n" not in str(info.value) and info.value.__cause__ is None
    assert os.path.exists(tmp_path / "cut.png")


@pytest.mark.parametrize("error", [MemoryError, RuntimeError, KeyError])
@pytest.mark.parametrize("workers", [1, 4])
def test_decoder_errors_that_say_nothing_about_the_file_propagate(tmp_path, monkeypatch, error, workers):
    """Only what Pillow raises for a bad file means "corrupt or truncated"; a MemoryError or a bug is raised."""
    from PIL import ImageFile

    _make_tree(tmp_path, per_class=4)

    def load(self):
        raise error("raised by the decoder")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(error, match="raised by the decoder"):
        load_face_mask_directory(tmp_path, image_size=16, split=0, workers=workers)
    with pytest.raises(error, match="raised by the decoder"):
        load_image(next(tmp_path.rglob("*.png")))


@pytest.mark.parametrize("error", [OSError, SyntaxError, ValueError, EOFError])
def test_what_pillow_raises_for_bad_files_is_corrupt_or_truncated(tmp_path, monkeypatch, error):
    from PIL import ImageFile

    path = _save(tmp_path / "face.png", _rgb(9))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: (_ for _ in ()).throw(error("bad block")))
    with pytest.raises(DataError, match=r"face\.png: corrupt or truncated image \(bad block\)"):
        load_image(path)
