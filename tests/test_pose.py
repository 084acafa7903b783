"""Landmarks and head pose in every record (issue 32, item 1): the estimate itself, real faces turned by known
angles, and the fields of JSON, CSV, video rows and Parquet."""

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import people
from ferkit.cli import app
from ferkit.runtime.pose import HeadPose, head_pose, project

runner = CliRunner()


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (25, 0, 0), (-35, 0, 0), (0, 20, 0), (0, -25, 0),
                                              (0, 0, 30), (0, 0, -60), (15, -10, 20)])
def test_synthetic_views_of_the_mean_face_are_recovered(yaw, pitch, roll):
    pose = head_pose(project(yaw, pitch, roll))
    assert pose.yaw == pytest.approx(yaw, abs=1.0) and pose.pitch == pytest.approx(pitch, abs=3.0)
    assert pose.roll == pytest.approx(roll, abs=1.0) and pose.reliable


def test_odd_landmarks_give_an_unreliable_pose_never_an_error():
    assert head_pose(None) is None and head_pose([(1, 2)] * 3) is None
    assert head_pose([(np.nan, 0)] * 5) is None
    same = head_pose([(5.0, 5.0)] * 5)  # every point on one spot
    assert isinstance(same, HeadPose) and not same.reliable
    swapped = head_pose([(60, 40), (20, 40), (40, 60), (25, 80), (55, 80)])  # the eyes swapped: a face upside down?
    assert not swapped.reliable
    profile = head_pose(project(70, 0, 0))
    assert profile.yaw == pytest.approx(70, abs=1) and not profile.reliable  # past RELIABLE_YAW
    outside = head_pose(project(0, 0, 0), box=(0, 0, 10, 10))  # the nose is not in the face's box
    assert not outside.reliable


def _scene(face: np.ndarray, size: int = 420) -> np.ndarray:
    canvas = np.full((size, size, 3), 190, np.uint8)
    y, x = (size - face.shape[0]) // 2, (size - face.shape[1]) // 2
    canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
    return canvas


def _only_face(recognizer, bgr):
    result = recognizer.predict(bgr, color="BGR")
    assert len(result.faces) == 1, result
    return result.faces[0]


@pytest.fixture(scope="module")
def recognizer():
    from ferkit import Recognizer

    return Recognizer()


def test_roll_follows_a_real_face_turned_by_known_angles(recognizer):
    """The done-when figure: roll within 3 degrees on rotated faces (the bundled astronaut and Grace Hopper, turned
    by 10 to 45 degrees either way): roll + turn is the face's own roll, the same at every angle."""
    angles = [-45, -30, -20, -10, 10, 20, 30, 45]
    for face in people():
        scene = _scene(face)
        own = []
        for angle in angles:
            turn = cv2.getRotationMatrix2D((scene.shape[1] / 2, scene.shape[0] / 2), angle, 1.0)  # counter-clockwise
            turned = cv2.warpAffine(scene, turn, scene.shape[1::-1], borderValue=(190, 190, 190))
            own.append(_only_face(recognizer, turned).pose.roll + angle)
        assert np.abs(np.array(own) - np.median(own)).max() <= 3.0, np.round(own, 1)
        upright = _only_face(recognizer, scene).pose.roll
        assert abs(upright - np.median(own)) <= 4.0  # an upright face is not searched again: a little more jitter


def test_landmarks_move_with_the_face_and_mirror_images_read_the_opposite_yaw(recognizer):
    face = people()[0]
    small = _only_face(recognizer, _scene(face))
    # the same face twice as large, 37 px further right: each landmark where the transform puts it
    big = np.full((700, 700, 3), 190, np.uint8)
    enlarged = cv2.resize(_scene(face), (840, 840))[70:770, 33:733]
    big[:] = enlarged
    large = _only_face(recognizer, big)
    expected = [(2 * x - 33, 2 * y - 70) for x, y in small.landmarks]
    # within 6% of the face's width: the detector's own consistency across scales (measured 4.2%)
    assert np.abs(np.array(large.landmarks) - np.array(expected)).max() < 0.06 * large.box[2]
    eye_l, eye_r = small.landmarks[:2]
    assert eye_l[0] < eye_r[0] and small.box[0] < eye_l[0] < eye_r[0] < small.box[0] + small.box[2]
    mirrored = _only_face(recognizer, cv2.flip(_scene(face), 1))
    assert mirrored.pose.yaw == pytest.approx(-small.pose.yaw, abs=3.0)
    assert mirrored.pose.roll == pytest.approx(-small.pose.roll, abs=5.0)  # upright faces: CenterFace's jitter
    assert small.pose.reliable and abs(small.pose.yaw) < 20 and abs(small.pose.pitch) < 25  # a near-frontal face


def test_records_carry_landmarks_and_pose_in_json_csv_and_video_rows(tmp_path):
    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from ferkit.pipeline.outputs import CSV_FIELDS, LANDMARK_FIELDS, POSE_FIELDS

    result = runner.invoke(app, ["predict", str(SAMPLE_PHOTO), "--json", str(tmp_path / "r.json"), "--csv",
                                 str(tmp_path / "r.csv"), "--no-progress"])
    assert result.exit_code == 0, result.output
    face = json.loads((tmp_path / "r.json").read_text())[0]["faces"][0]
    assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
    assert set(face["pose"]) == {"yaw", "pitch", "roll", "reliable"}
    x, y, w, h = face["box"]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in face["landmarks"])
    row = next(csv.DictReader(open(tmp_path / "r.csv")))
    assert set(LANDMARK_FIELDS + POSE_FIELDS) <= set(CSV_FIELDS) and list(row) == CSV_FIELDS
    assert float(row["eye_left_x"]) == face["landmarks"][0][0] and float(row["yaw"]) == face["pose"]["yaw"]
    # without detection there are no landmarks: null in JSON, empty in CSV
    result = runner.invoke(app, ["predict", str(SAMPLE_PHOTO), "--no-detect", "--jsonl", str(tmp_path / "n.jsonl"),
                                 "--csv", str(tmp_path / "n.csv"), "--no-progress"])
    assert result.exit_code == 0, result.output
    face = json.loads((tmp_path / "n.jsonl").read_text())["faces"][0]
    assert face["landmarks"] is None and face["pose"] is None
    assert next(csv.DictReader(open(tmp_path / "n.csv")))["yaw"] == ""
    # video rows
    from test_video import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=5)
    result = runner.invoke(app, ["video", str(clip), "--jsonl", str(tmp_path / "v.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert rows and all(len(r["landmarks"]) == 5 and r["pose"]["reliable"] in (True, False) for r in rows)


def test_parquet_schemas_hold_landmarks_and_pose():
    pa = pytest.importorskip("pyarrow")
    from ferkit.batch import schemas
    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from ferkit.pipeline.outputs import csv_rows
    from ferkit.pipeline.recognize import Recognizer

    record = Recognizer().predict(SAMPLE_PHOTO).to_dict()
    table = pa.Table.from_pylist([record], schema=schemas()["image"])
    assert table.to_pylist()[0]["faces"][0]["pose"]["yaw"] == record["faces"][0]["pose"]["yaw"]
    rows = [{k: (None if v == "" else v) for k, v in r.items()} for r in csv_rows(record)]
    per_face = pa.Table.from_pylist(rows, schema=schemas()["face"])
    assert per_face.column("nose_x").to_pylist() == [record["faces"][0]["landmarks"][2][0]]
