"""`ferkit evaluate --photos`: labelled faces in real photos, matched to detections by IoU, scored end to end."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import group_photo, people
from ferkit.cli import app
from ferkit.data.fer2013 import DataError
from ferkit.runtime.detect import create_detector
from ferkit.analysis.evaluate import compute_metrics
from ferkit.analysis.photos import evaluate_photos, find_faces, iou, read_photo_set

runner = CliRunner()
pytest.importorskip("sklearn")


def test_end_to_end_metrics_count_missed_faces_as_wrong():
    labels = np.array([3, 3, 0, 0])
    probs = np.array([np.eye(7)[3], np.eye(7)[0], np.eye(7)[0], np.zeros(7)]) * 0.9 + 0.1 / 7
    found = np.array([True, True, True, False])
    r = compute_metrics(probs, labels, found=found)
    assert r["n"] == 4 and r["found"] == 3 and r["not_found"]["angry"] == 1
    assert r["accuracy"] == 0.5  # 2 right of 4 labelled faces
    assert r["found_accuracy"] == pytest.approx(2 / 3)  # the classifier alone, on the 3 found
    assert r["per_class"]["angry"]["recall"] == 0.5 and r["per_class"]["angry"]["precision"] == 0.5
    assert r["per_class"]["happy"]["recall"] == 0.5 and r["per_class"]["happy"]["precision"] == 1.0
    assert r["confusion"][0][0] == 1 and r["confusion"][3][0] == 1 and sum(map(sum, r["confusion"])) == 3
    assert r["top2_accuracy"] <= 0.75  # a missed face is never in the top 2
    plain = compute_metrics(probs[:3], labels[:3])
    assert set(plain) <= set(r)  # the same keys as the FER2013 report, and more


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory):
    """Two photos: two people side by side (both labelled, plus a box on the empty wall), and one person
    alone; the labelled boxes are the detector's boxes shifted by a few pixels."""
    root = tmp_path_factory.mktemp("photos")
    (root / "img").mkdir()
    group = group_photo(2)
    cv2.imwrite(str(root / "img" / "group.jpg"), group)
    single = np.full((260, 220, 3), 180, np.uint8)
    single[30:230, 35:185] = people()[1]
    cv2.imwrite(str(root / "img" / "single.jpg"), single)
    det = create_detector("centerface")
    g = sorted(det.detect(np.ascontiguousarray(group[..., ::-1])), key=lambda f: f.box[0])
    s = det.detect(np.ascontiguousarray(single[..., ::-1]))
    assert len(g) == 2 and len(s) == 1
    rows = ["path,face,x,y,w,h,emotion"]
    for k, (face, emotion) in enumerate(zip(g, ["happy", "neutral"])):
        x, y, w, h = face.box
        rows.append(f"img/group.jpg,{k},{x + 3:.0f},{y - 2:.0f},{w:.0f},{h + 4:.0f},{emotion}")
    rows.append(f"img/group.jpg,2,{group.shape[1] - 30},0,25,25,sad")  # nothing there: not found
    x, y, w, h = s[0].box
    rows.append(f"img/single.jpg,0,{x:.0f},{y:.0f},{w:.0f},{h:.0f},neutral")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_photo_set_is_matched_by_iou_and_cropped_like_predict(photo_set):
    from ferkit.pipeline.recognize import Recognizer

    found = find_faces(photo_set)  # 48x48 grey crops, box framing: what fer-e and fer-real-int8 take
    assert found.found.tolist() == [True, True, False, True]
    assert found.labels.tolist() == [3, 6, 4, 6]
    rec = Recognizer("fer-real-int8", detect=True)
    result = rec.predict(photo_set / "img" / "group.jpg")
    faces = sorted(result.faces, key=lambda f: f.box[0])
    report = evaluate_photos(found, "fer-e")
    assert report["n"] == 4 and report["found"] == 3 and report["not_found"]["sad"] == 1
    # the crops are exactly predict's: the same probabilities for the same face
    probs = rec.classifier.predict_proba(found.crops[:2])
    for p, face in zip(probs, faces):
        assert np.allclose(p, [face.probabilities[e] for e in rec.labels], atol=1e-4)
    assert report["accuracy"] <= 0.75


def test_emotion_folders_and_labels_without_boxes(tmp_path, photo_set):
    for emotion in ("happy", "Sadness"):
        (tmp_path / emotion).mkdir()
        (tmp_path / emotion / "a.jpg").write_bytes((photo_set / "img" / "single.jpg").read_bytes())
    (tmp_path / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    faces = read_photo_set(tmp_path)
    assert [f.label for f in faces] == [4, 3, 3] and all(f.box is None for f in faces)
    found = find_faces(tmp_path)
    assert found.found.tolist() == [True, True, False]  # the broken file: reported, counted as not found
    assert len(found.errors) == 1 and "broken.jpg" in next(iter(found.errors))
    (tmp_path / "labels.csv").write_text("path,emotion\nhappy/a.jpg,happy\n")  # CK+'s layout: no boxes
    assert find_faces(tmp_path).found.tolist() == [True]


def test_bad_photo_sets_are_refused_with_the_row(tmp_path):
    (tmp_path / "labels.csv").write_text("path,face,x,y,w,h,emotion\na.jpg,0,1,2,3,4,contempt\n")
    with pytest.raises(DataError, match="row 2: unknown emotion name 'contempt'"):
        read_photo_set(tmp_path)
    (tmp_path / "labels.csv").write_text("path,face,x,y,w,h,emotion\na.jpg,0,1,2,x,4,happy\n")
    with pytest.raises(DataError, match="row 2: box x,y,w,h must be numbers"):
        read_photo_set(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\n")
    with pytest.raises(DataError, match="needs columns path,emotion"):
        read_photo_set(tmp_path)
    (tmp_path / "labels.csv").unlink()
    (tmp_path / "smirk").mkdir()
    with pytest.raises(DataError, match="smirk"):
        read_photo_set(tmp_path)


def test_cli_evaluate_photos(photo_set, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", "--photos", str(photo_set), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "faces found: 3 / 4" in result.output and "missed" in result.output
    report = json.loads(out.read_text())
    assert report["split"] == "photos" and report["found"] == 3 and len(report["confusion"]) == 7
    result = runner.invoke(app, ["evaluate", "--photos", str(photo_set), "--data", "x.csv"])
    assert result.exit_code == 2 and "give --data" in result.output
    result = runner.invoke(app, ["evaluate", "--photos", str(tmp_path / "none")])
    assert result.exit_code == 1 and "not a folder" in result.output


def test_evaluate_without_scikit_learn_says_so_before_detecting(photo_set, monkeypatch):
    """Issue 31 item 21: a core install (no scikit-learn) is told in one line, before the detection pass."""
    import sys

    import ferkit.analysis.photos

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)

    def no_detection(*args, **kwargs):
        raise AssertionError("the detection pass ran before the scikit-learn check")

    monkeypatch.setattr(ferkit.analysis.photos, "find_faces", no_detection)
    result = runner.invoke(app, ["evaluate", "--photos", str(photo_set)])
    assert result.exit_code == 1 and "scikit-learn" in result.output and "Traceback" not in result.output
    with pytest.raises(ImportError, match="scikit-learn"):
        ferkit.analysis.photos.evaluate_photo_folder(photo_set)


def test_evaluate_photos_no_progress_draws_no_bar(photo_set):
    """Issue 31 item 21: ``evaluate --no-progress``; the bar (tqdm, on stderr) is drawn only without it."""
    quiet = runner.invoke(app, ["evaluate", "--photos", str(photo_set), "--no-progress"])
    loud = runner.invoke(app, ["evaluate", "--photos", str(photo_set), "--progress"])
    assert quiet.exit_code == loud.exit_code == 0, quiet.output + loud.output
    assert "photos:" in loud.output and "photos:" not in quiet.output  # tqdm's desc="photos"
