"""Training from several sources (FER2013 + face-crop folders), re-framing crops as `predict` frames faces,
5-landmark alignment."""

import json

import cv2
import numpy as np
import pytest

from conftest import people
from ferkit.runtime.crop import align_face, align_template, crop_face, fitted_frames, framing_of, similarity_transform
from ferkit.runtime.detect import create_detector
from ferkit.core.labels import EMOTIONS
from ferkit.data.sources import is_crop_folder, load_crop_folder, reframe_crops


def tight_crops(n: int) -> list[np.ndarray]:
    """n tight 100x100 RGB face crops of the two bundled people, slightly shifted and brightened."""
    det, out = create_detector("centerface"), []
    boxes = [max(det.detect(cv2.cvtColor(p, cv2.COLOR_BGR2RGB)), key=lambda f: f.box[2]).box for p in people()]
    for i in range(n):
        bgr = cv2.copyMakeBorder(people()[i % 2], 20, 20, 20, 20, cv2.BORDER_REPLICATE)
        x, y, w, h = boxes[i % 2]
        side = int(0.95 * max(w, h))
        x0, y0 = int(x + w / 2 - side / 2) + 20 + (i * 3) % 7 - 3, int(y + h / 2 - side / 2) + 20 + (i * 5) % 7 - 3
        crop = bgr[y0:y0 + side, x0:x0 + side]
        crop = cv2.convertScaleAbs(crop, alpha=1.0, beta=(i % 4) * 8)
        out.append(cv2.cvtColor(cv2.resize(crop, (100, 100), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    return out


def write_crop_folder(root, n_per_class: int = 2, layout: str = "csv"):
    root.mkdir()
    crops = tight_crops(7 * n_per_class)
    rows = []
    for i, rgb in enumerate(crops):
        emotion = EMOTIONS[i % 7]
        rel = f"img_{i:03d}.jpg" if layout == "csv" else f"{emotion}/img_{i:03d}.jpg"
        (root / rel).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(root / rel), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        rows.append(f"{rel},{emotion}\n")
    if layout == "csv":
        (root / "labels.csv").write_text("path,emotion\n" + "".join(rows))
    return root


@pytest.mark.parametrize("layout", ["csv", "folders"])
def test_crop_folder_is_reframed_and_split_stratified(tmp_path, layout):
    root = write_crop_folder(tmp_path / "crops", n_per_class=3, layout=layout)
    assert is_crop_folder(root) and not is_crop_folder(tmp_path / "crops" / "missing")
    folder = load_crop_folder(root, holdout=0.34)
    f = folder.faces
    assert f.images.shape == (21, 48, 48) and f.images.dtype == np.uint8
    assert folder.fallback == 0  # the detector found every face in the padded crops
    val = f.usage == "Validation"
    assert np.bincount(f.labels[val], minlength=7).tolist() == [1] * 7  # one of each emotion held out
    # the same faces each time, whatever the training seed: the cache gives back identical crops
    again = load_crop_folder(root, holdout=0.34)
    assert np.array_equal(again.faces.images, f.images) and np.array_equal(again.faces.usage, f.usage)
    # re-framed as predict frames a face: the detector's box framing, not the tight crop resized
    tight = cv2.resize(cv2.cvtColor(tight_crops(1)[0], cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(f.images[0].astype(int) - tight).mean() > 10


def test_a_crop_without_a_face_is_framed_from_the_median_box():
    crops = tight_crops(3) + [np.full((100, 100, 3), 90, np.uint8)]
    out, found = reframe_crops(crops)
    assert found.tolist() == [True, True, True, False]
    assert out.shape == (4, 48, 48) and (out[3] == 90).all()


def test_similarity_transform_recovers_a_known_one():
    t = align_template()
    angle, scale, shift = np.radians(25), 3.2, np.array([140.0, -20.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = t @ rot.T + shift
    m = similarity_transform(moved, t)
    assert np.allclose(moved @ m[:, :2].T + m[:, 2], t, atol=1e-6)
    assert np.isclose(np.degrees(np.arctan2(m[1, 0], m[0, 0])), -25, atol=1e-6)


@pytest.mark.parametrize("person, degrees", [(0, -20), (0, 15), (1, -15), (1, 20)])
def test_a_rotated_face_comes_out_level(person, degrees):
    det = create_detector("centerface")
    rgb = cv2.cvtColor(cv2.copyMakeBorder(people()[person], 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=(128, 128, 128)),
                       cv2.COLOR_BGR2RGB)
    upright = max(det.detect(rgb), key=lambda f: f.box[2])
    h, w = rgb.shape[:2]
    rotated = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), (w, h),
                             borderValue=(128, 128, 128))
    turned = max(det.detect(rotated), key=lambda f: f.box[2])
    roll = lambda f: np.degrees(np.arctan2(f.landmarks[1][1] - f.landmarks[0][1], f.landmarks[1][0] - f.landmarks[0][0]))  # noqa: E731
    # the detector sees the roll (image y points down); CenterFace's landmarks under-read it beyond ~20 degrees
    assert abs(roll(turned) - roll(upright) + degrees) < 5
    level, from_rotated = align_face(rgb, upright), align_face(rotated, turned)
    boxed = crop_face(rotated, turned)  # the box framing keeps the roll
    err_aligned = np.abs(level.astype(int) - from_rotated).mean()
    err_boxed = np.abs(level.astype(int) - boxed).mean()
    assert err_aligned < err_boxed  # closer to the upright face's alignment than the box crop of the turned face
    # and the aligned face's own landmarks sit level on the template
    padded = cv2.copyMakeBorder(cv2.resize(cv2.cvtColor(from_rotated, cv2.COLOR_GRAY2RGB), (192, 192)), 64, 64, 64, 64,
                                cv2.BORDER_CONSTANT, value=(128, 128, 128))
    again = max(det.detect(padded), key=lambda f: f.score)
    assert abs(roll(again)) < 6  # from 15-20 degrees to under 6 (CenterFace's landmarks jitter by a few)


def test_framing_comes_from_the_model_and_reaches_the_recognizer():
    from ferkit import Recognizer

    assert framing_of({}).method == "box" and framing_of({"framing": "align"}).method == "align"
    with pytest.raises(ValueError, match="unknown framing"):
        framing_of({"framing": "tilted"})
    assert Recognizer().frame.method == "box"  # the shipped models were trained on box-framed faces
    r = Recognizer("fer-real-int8")  # 48x48 grey, as align_face crops below
    rgb = cv2.cvtColor(people()[1], cv2.COLOR_BGR2RGB)
    faces = r.locate(rgb)
    r.frame = fitted_frames()["align"]
    assert np.array_equal(r.crops(rgb, faces)[0], align_face(rgb, faces[0]))


def test_training_on_fer2013_and_a_crop_folder(tiny_csv, tmp_path, tiny_model_name):
    from ferkit.train import load_training_data, make_config, train
    from ferkit.train.recipe import epoch_order as _epoch_order
    from ferkit.weights import read_metadata

    root = write_crop_folder(tmp_path / "crops", n_per_class=4)
    cfg = make_config("paper", data=str(tiny_csv), sources=(str(root),), source_weights=(0.5, 2.0), holdout=0.25,
                      out=str(tmp_path / "run"), model=tiny_model_name, epochs=2, batch_size=32, val_fraction=0.1,
                      logit_adjust=1.0, command="ferkit train (test)")
    d = load_training_data(cfg)
    fer_n, crop_n = len(d.groups[0]), len(d.groups[1])
    assert crop_n == 21 and fer_n == 252  # 28 crops less 7 held out; 280 FER2013 rows less 10%
    order = _epoch_order(cfg, 0, len(d.x_train), d.groups, d.weights).numpy()
    assert (order >= fer_n).sum() == 2 * crop_n and (order < fer_n).sum() == fer_n // 2
    assert len(set(order[order < fer_n].tolist())) == fer_n // 2  # half of FER2013, each face once
    results = train(cfg, progress=False, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "val_acc_crops" in rows[0]
    meta = read_metadata(tmp_path / "run" / "model.safetensors")
    names = [s["name"] for s in meta["sources"]]
    assert names == ["fer2013", "crops"] and meta["framing"] == "box"
    crops = meta["sources"][1]
    assert crops["train_faces"] == 21 and crops["val_faces"] == 7 and crops["weight"] == 2.0
    assert 0 <= crops["val_accuracy"] <= 1 and set(crops["val_recall"]) == set(EMOTIONS)
    assert "crops_validation" in meta["accuracy"] and results["sources"][0]["train_faces"] == 252


def test_init_weights_and_their_architecture(tiny_csv, tmp_path, tiny_model_name):
    from ferkit.train import make_config, train

    cfg = make_config("paper", data=str(tiny_csv), out=str(tmp_path / "a"), model=tiny_model_name, epochs=1,
                      batch_size=32, init="fer-e")
    with pytest.raises(ValueError, match="architecture is 'vgg-m'"):
        train(cfg, progress=False, log=lambda m: None)


def test_cli_train_needs_one_fer2013_source_and_matching_weights(tiny_csv, tmp_path):
    from typer.testing import CliRunner

    from ferkit.cli import app

    root = write_crop_folder(tmp_path / "crops", n_per_class=1)
    r = CliRunner().invoke(app, ["train", "--data", str(root), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "exactly one FER2013 source" in r.output
    r = CliRunner().invoke(app, ["train", "--data", str(tiny_csv), "--data", str(root), "--source-weight", "1",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "1 given for 2 --data" in r.output


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_a_photo_turned_on_its_side_is_classified_upright(quarters):
    """A photo turned by 90/180/270 degrees without an EXIF tag: the face is cropped upright (box framing turns
    it by the quarter its landmarks show) and classified as in the upright photo (issue 24, item 9)."""
    from ferkit import Recognizer
    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from ferkit.core.images import read_image

    r = Recognizer()
    rgb = read_image(SAMPLE_PHOTO)
    turned = np.ascontiguousarray(np.rot90(rgb, quarters))
    upright_crop = r.crops(rgb, r.locate(rgb))[0].astype(int)
    crop = r.crops(turned, r.locate(turned))[0].astype(int)
    diff = {k: np.abs(np.rot90(crop, k) - upright_crop).mean() for k in range(4)}
    assert min(diff, key=diff.get) == 0 and diff[0] < 0.75 * min(diff[1], diff[2], diff[3])  # upright, not turned
    face = r.predict(turned, color="RGB").faces[0]
    assert face.emotion == r.predict(rgb, color="RGB").faces[0].emotion == "happy"
