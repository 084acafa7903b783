"""Video: tracking with stable ids (and a new id at a cut), smoothing, outputs, bad input."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import people
from ferkit.cli import app
from ferkit.video import Tracker, VideoError, stream, thumbnail

runner = CliRunner()


def make_clip(path, frames=40, cut=None, two=False, fps=20):
    """A 320x240 clip: one face drifting sideways; at frame `cut` another person takes its place;
    with `two`, both people side by side the whole time."""
    a, b = people()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (480, 240))
    for i in range(frames):
        frame = np.full((240, 480, 3), 200, np.uint8)
        x = 40 + int(10 * np.sin(i / 6))
        frame[20:220, x:x + 150] = b if cut is not None and i >= cut else a
        if two:
            frame[20:220, 300:450] = b
        writer.write(frame)
    writer.release()
    return path


def test_cut_between_two_people_starts_a_new_track(tmp_path):
    clip = make_clip(tmp_path / "cut.mp4", frames=40, cut=20)
    result = runner.invoke(app, ["video", str(clip), "--jsonl", str(tmp_path / "t.jsonl"), "--out",
                                 str(tmp_path / "a.mp4"), "--summary"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(40))  # one row per face per frame
    assert {r["track_id"] for r in rows if r["frame"] < 20} == {0}
    assert {r["track_id"] for r in rows if r["frame"] >= 20} == {1}
    for r in rows:
        assert set(r) == {"frame", "time_s", "track_id", "box", "score", "emotion", "probabilities", "smoothed"}
        assert abs(sum(r["smoothed"].values()) - 1) < 1e-3 and r["emotion"] == max(r["smoothed"], key=r["smoothed"].get)
    assert rows[20]["time_s"] == pytest.approx(1.0)  # 20 fps
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 40  # the annotated video has every frame
    assert "track 0: 20 frames" in result.output and "track 1: 20 frames" in result.output


def test_two_people_keep_their_ids_and_detection_can_skip_frames(tmp_path):
    clip = make_clip(tmp_path / "two.mp4", frames=30, two=True)
    frames = list(stream(clip, detect_every=3))
    assert len(frames) == 30 and all(len(f.faces) == 2 for f in frames)
    ids = {(f.faces[0].track_id, f.faces[1].track_id) for f in frames}
    left_ids = {min(f.faces, key=lambda t: t.box[0]).track_id for f in frames}
    right_ids = {max(f.faces, key=lambda t: t.box[0]).track_id for f in frames}
    assert len(left_ids) == 1 and len(right_ids) == 1 and left_ids != right_ids, ids


def test_smoothing_is_a_running_mean_per_track(tmp_path):
    clip = make_clip(tmp_path / "s.mp4", frames=12)
    raw = [f.faces[0].probabilities for f in stream(clip, window=1)]
    smooth = [f.faces[0] for f in stream(clip, window=4)]
    labels = list(raw[0])
    for i, face in enumerate(smooth):
        expected = np.mean([[raw[j][k] for k in labels] for j in range(max(0, i - 3), i + 1)], axis=0)
        np.testing.assert_allclose([face.smoothed[k] for k in labels], expected, atol=1e-6)
        assert face.probabilities == pytest.approx(raw[i])


def test_min_confidence_abstains_on_the_smoothed_probabilities(tmp_path):
    from ferkit.recognize import Recognizer

    clip = make_clip(tmp_path / "m.mp4", frames=6)
    plain = [f.faces[0] for f in stream(clip, window=3)]
    top = max(max(f.smoothed.values()) for f in plain)
    cut = [f.faces[0] for f in stream(clip, window=3, recognizer=Recognizer(min_confidence=top + 1e-6))]
    assert all(f.emotion == "uncertain" for f in cut) and [f.smoothed for f in cut] == [f.smoothed for f in plain]
    result = runner.invoke(app, ["video", str(clip), "--min-confidence", "1", "--jsonl", str(tmp_path / "m.jsonl")])
    assert result.exit_code == 0, result.output
    assert {json.loads(line)["emotion"] for line in (tmp_path / "m.jsonl").read_text().splitlines()} == {"uncertain"}


def test_tracker_gates_on_appearance():
    from ferkit.detect import Face

    rng = np.random.default_rng(0)
    one, other = rng.integers(0, 255, (48, 48)).astype(np.uint8), rng.integers(0, 255, (48, 48)).astype(np.uint8)
    tracker = Tracker()
    box = Face((10.0, 10.0, 50.0, 50.0), 0.9)
    first = tracker.update([box], [thumbnail(one)])[0].id
    assert tracker.update([box], [thumbnail(one)])[0].id == first
    assert tracker.update([box], [thumbnail(other)])[0].id != first  # same place, different face


def test_bad_video_input(tmp_path):
    def run(*args):
        return runner.invoke(app, ["video", *args])

    result = run(str(tmp_path / "missing.mp4"))
    assert result.exit_code == 1 and "missing.mp4: no such file" in result.output
    (tmp_path / "text.mp4").write_text("not a video")
    result = run(str(tmp_path / "text.mp4"))
    assert result.exit_code == 1 and "text.mp4" in result.output
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty file" in run(str(tmp_path / "empty.mp4")).output
    result = run("--camera", "97")
    assert result.exit_code == 1 and "camera 97: cannot be opened" in result.output
    result = run()
    assert result.exit_code == 1 and "give a video file or --camera" in result.output


def test_broken_tail_keeps_what_was_processed(tmp_path):
    a, _ = people()
    writer = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 20, (320, 240))
    for i in range(60):
        frame = np.full((240, 320, 3), 200, np.uint8)
        frame[20:220, 80:230] = a
        writer.write(frame)
    writer.release()
    data = (tmp_path / "full.avi").read_bytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(data[: int(len(data) * 0.6)])  # the file header still promises 60 frames
    result = runner.invoke(app, ["video", str(broken), "--jsonl", str(tmp_path / "t.jsonl")])
    rows = (tmp_path / "t.jsonl").read_text().splitlines()
    assert result.exit_code == 1
    assert "broken.avi: stopped after" in result.output and "of 60 frames" in result.output
    assert 10 < len(rows) < 60  # what was read before the break is kept


def test_stream_raises_for_a_source_without_frames(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        list(stream(tmp_path / "nope.avi"))


def test_live_reader_drops_frames_instead_of_queueing():
    import time

    from ferkit.video import _LatestFrame

    class FakeCamera:  # 50 frames, one every 2 ms
        def __init__(self):
            self.n = 0

        def read(self):
            if self.n >= 50:
                return False, None
            time.sleep(0.002)
            self.n += 1
            return True, np.full((4, 4, 3), self.n, np.uint8)

    reader = _LatestFrame(FakeCamera())
    taken, dropped, last = 0, 0, 0
    while True:
        frame, skipped = reader.get()
        if frame is None:
            break
        assert frame[0, 0, 0] > last  # always the newest frame, in order
        last = int(frame[0, 0, 0])
        taken += 1
        dropped += skipped
        time.sleep(0.01)  # a consumer 5x slower than the camera
    assert taken + dropped == 50 and dropped > taken


def test_window_and_detect_every_below_one_are_refused():
    from ferkit.video import FrameTracker, stream

    with pytest.raises(ValueError, match="window must be at least 1"):
        FrameTracker(None, window=0)
    with pytest.raises(ValueError, match="at least 1, not 5 and 0"):
        next(stream("missing.mp4", window=5, detect_every=0))


@pytest.mark.parametrize("argv", [["--camera", "9"], ["{trunc}"]])
def test_video_errors_are_one_clean_line(argv, tmp_path):
    """No OpenCV/FFmpeg warnings ([ WARN:0@...], moov atom not found) and no '0 frame(s)' line before the error."""
    import subprocess
    import sys

    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 12)
    argv = [a.format(trunc=trunc) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "ferkit.cli", "video", *argv], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
