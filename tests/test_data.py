import gzip
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_faces, write_csv
from ferkit.data.fer2013 import DataError, FerData, canonical_split, load_fer2013, save_npz, train_val_split


def test_csv_roundtrip(tiny_csv):
    data = load_fer2013(tiny_csv)
    images, labels = make_faces(350)
    assert data.images.dtype == np.uint8 and data.images.shape == (350, 48, 48)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.split("PublicTest").images.shape == (70, 48, 48)
    assert data.split("training").class_counts().sum() == 280


def test_gzip_and_cache(tiny_csv, tmp_path):
    gz = tmp_path / "tiny.csv.gz"
    with open(tiny_csv, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    first = load_fer2013(gz)
    cached = list(Path(os.environ["FERKIT_CACHE"]).glob("fer2013-*.npz"))
    assert len(cached) == 1
    second = load_fer2013(gz)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.usage, second.usage)


def test_cache_invalidated_when_source_changes(tiny_csv):
    load_fer2013(tiny_csv)
    images, labels = make_faces(20, seed=5)
    write_csv(tiny_csv, images, labels)
    os.utime(tiny_csv, (time.time() + 5, time.time() + 5))
    assert len(load_fer2013(tiny_csv)) == 20


def test_file_without_usage_answers_any_split(tmp_path):
    images, labels = make_faces(7)
    path = tmp_path / "public_only.csv"
    path.write_text("emotion,pixels\n" + "".join(f"{y},{' '.join(map(str, im.ravel()))}\n" for im, y in zip(images, labels)))
    assert len(load_fer2013(path).split("PublicTest")) == 7


def _broken(tmp_path, text: str):
    path = tmp_path / "broken.csv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        load_fer2013(path, cache=False)
    return str(err.value)


@pytest.mark.parametrize("row, expected", [
    ("0,{px},Training", None),
    ("0,{short},Training", "row 3: 2303 pixel values"),
    ("0,{big},Training", "row 3: pixel value 256 outside 0..255"),
    ("9,{px},Training", "row 3: emotion '9' is not a label 0..6"),
    ("x,{px},Training", "row 3: emotion 'x'"),
    ("0,{px},Validation", "row 3: unknown Usage 'Validation'"),
    ("0,{word},Training", "row 3: pixels contain a value that is not an integer"),
])
def test_bad_rows_are_named(tmp_path, row, expected):
    px = " ".join(["7"] * 2304)
    values = {"px": px, "short": " ".join(["7"] * 2303), "big": " ".join(["7"] * 2303 + ["256"]),
              "word": " ".join(["7"] * 2303 + ["x7"])}
    text = f"emotion,pixels,Usage\n0,{px},Training\n{row.format(**values)}\n"
    if expected is None:
        path = tmp_path / "ok.csv"
        path.write_text(text)
        assert len(load_fer2013(path, cache=False)) == 2
    else:
        message = _broken(tmp_path, text)
        assert "broken.csv" in message and expected in message


def test_missing_columns(tmp_path):
    assert "missing column(s) pixels" in _broken(tmp_path, "emotion,image\n0,1 2 3\n")


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_fer2013(tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="expected a FER2013"):
        load_fer2013(tmp_path / "x.txt")


def _write_folder(root, names):
    images, _ = make_faces(len(names))
    for img, name in zip(images, names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
    return images


def test_folder_export(tmp_path):
    names = ["train/Anger/Training_1.png", "train/happiness/Training_2.png", "test/SADNESS/PublicTest_3.png",
             "test/neutral/PrivateTest_4.png", "train/surprise/img5.png"]
    images = _write_folder(tmp_path, names)
    data = load_fer2013(tmp_path)
    order = np.argsort([str(tmp_path / n) for n in names])
    np.testing.assert_array_equal(data.images, images[order])
    assert dict(zip(data.labels.tolist(), data.usage.tolist())) == {
        0: "Training", 3: "Training", 4: "PublicTest", 6: "PrivateTest", 5: "Training"}


def test_folder_refuses_wrong_size_and_unknown_class(tmp_path):
    (tmp_path / "train" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "train/happy/Training_1.png"), np.zeros((64, 64), np.uint8))
    with pytest.raises(DataError, match="Training_1.png: image is 64x64, expected 48x48"):
        load_fer2013(tmp_path)
    other = tmp_path / "other"
    _write_folder(other, ["train/bored/Training_1.png"])
    with pytest.raises(DataError, match="folder 'bored': unknown emotion name"):
        load_fer2013(other)


def test_folder_unreadable_image(tmp_path):
    (tmp_path / "train" / "fear").mkdir(parents=True)
    (tmp_path / "train/fear/Training_9.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="Training_9.jpg: not a readable image"):
        load_fer2013(tmp_path)


def test_split_names_and_val_split():
    assert canonical_split("public-test") == "PublicTest"
    with pytest.raises(DataError, match="unknown split"):
        canonical_split("dev")
    train, val = train_val_split(100, 0.1, seed=3)
    assert len(val) == 10 and len(set(train) | set(val)) == 100
    assert np.array_equal(val, train_val_split(100, 0.1, seed=3)[1])


def test_npz_roundtrip_and_bad_npz(tiny_csv, tmp_path):
    data = load_fer2013(tiny_csv)
    back = load_fer2013(save_npz(data, tmp_path / "d.npz"))
    np.testing.assert_array_equal(back.images, data.images)
    np.testing.assert_array_equal(back.labels, data.labels)
    assert list(back.usage) == list(data.usage)
    np.savez(tmp_path / "nolabels.npz", images=data.images)
    with pytest.raises(DataError, match="nolabels.npz: not a ferkit data file: missing array labels"):
        load_fer2013(tmp_path / "nolabels.npz")
    bad = FerData(data.images, data.labels.copy(), data.usage, "x")
    bad.labels[5] = 9
    with pytest.raises(DataError, match="row 5: label 9"):
        load_fer2013(save_npz(bad, tmp_path / "badlabel.npz"))
    np.savez(tmp_path / "shape.npz", images=data.images[:, :40], labels=data.labels, usage=data.usage)
    with pytest.raises(DataError, match=r"uint8 \(N, 48, 48\)"):
        load_fer2013(tmp_path / "shape.npz")


def test_folders_without_split_prefixes_and_csv_without_usage_work_everywhere(tmp_path):
    from typer.testing import CliRunner

    from ferkit.cli import app

    runner = CliRunner()
    names = [f"train/{e}/img{i}.png" for i, e in enumerate(["happy", "sad", "angry", "neutral"] * 3)]
    names += [f"test/{e}/img{i}.png" for i, e in enumerate(["happy", "sad", "fear"])]
    _write_folder(tmp_path / "export", names)
    data = load_fer2013(tmp_path / "export")
    assert sorted(set(data.usage.tolist())) == ["PublicTest", "Training"] and (data.usage == "PublicTest").sum() == 3
    result = runner.invoke(app, ["data", "info", str(tmp_path / "export")])
    assert result.exit_code == 0, result.output
    assert "Training" in result.output and "PublicTest" in result.output
    result = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "export"), "--split", "PublicTest", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert '"n": 3' in result.output and '"split": "PublicTest"' in result.output

    images, labels = make_faces(14)
    plain = tmp_path / "plain.csv"
    with open(plain, "w") as f:
        f.write("emotion,pixels\n")
        for img, y in zip(images, labels):
            f.write(f"{y},{' '.join(map(str, img.ravel()))}\n")
    result = runner.invoke(app, ["data", "info", str(plain)])
    assert result.exit_code == 0, result.output
    assert "no split names" in result.output and "Unknown" in result.output
    result = runner.invoke(app, ["evaluate", "--data", str(plain), "--json", "-"])
    assert result.exit_code == 0, result.output
    assert '"split": "all rows (no split names)"' in result.output and '"n": 14' in result.output
