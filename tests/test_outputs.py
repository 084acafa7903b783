"""A user's files are sacred (issue 31): an output never replaces an input or another output, an existing output is
replaced only by a finished one, and Ctrl-C keeps complete records."""

import json
import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from ferkit.pipeline.face_images import SAMPLE_PHOTO
from ferkit.cli import app
from ferkit.pipeline.outputs import OutputError, PendingFile, RecordWriter, check_apart

runner = CliRunner()


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "holiday.jpg"
    shutil.copy(SAMPLE_PHOTO, path)
    return path


def test_predict_refuses_to_write_over_its_input(photo):
    before = photo.read_bytes()
    result = runner.invoke(app, ["predict", str(photo), "--jsonl", str(photo)])
    assert result.exit_code == 2 and "would overwrite the input" in result.output
    assert photo.read_bytes() == before


def test_predict_refuses_two_outputs_on_one_file(photo, tmp_path):
    same = tmp_path / "same.txt"
    result = runner.invoke(app, ["predict", str(photo), "--jsonl", str(same), "--csv", str(tmp_path / "." / "same.txt")])
    assert result.exit_code == 2 and "--jsonl and --csv name the same file" in result.output
    assert not same.exists()


def test_annotate_into_the_input_folder_is_refused(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), cv2.imread(str(SAMPLE_PHOTO)))
    before = (shots / "a.png").read_bytes()
    result = runner.invoke(app, ["predict", str(shots), "--annotate", str(shots)])
    assert result.exit_code == 2 and "--annotate would overwrite the input" in result.output
    assert (shots / "a.png").read_bytes() == before


def test_a_hard_link_to_an_input_counts_as_the_input(photo, tmp_path):
    link = tmp_path / "link.jsonl"
    link.hardlink_to(photo)
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_apart([photo], {"--jsonl": link})
    check_apart([photo], {"--jsonl": tmp_path / "other.jsonl", "--csv": "-", "--json": None})  # fine


def test_video_refuses_to_write_over_its_input(tmp_path):
    clip = tmp_path / "clip.ts"
    clip.write_bytes(b"\0" * 100)
    result = runner.invoke(app, ["video", str(clip), "--jsonl", str(clip)])
    assert result.exit_code == 2 and clip.stat().st_size == 100


def test_a_model_that_does_not_load_leaves_an_old_output_as_it_was(photo, tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text('{"kept": true}\n')
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    result = runner.invoke(app, ["predict", str(photo), "--jsonl", str(old), "--model", str(bad)])
    assert result.exit_code == 1
    assert old.read_text() == '{"kept": true}\n' and not list(tmp_path.glob(".old.jsonl.*"))


def test_a_camera_that_never_opens_leaves_an_old_output_as_it_was(tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text("kept\n")
    result = runner.invoke(app, ["video", "--camera", "9", "--jsonl", str(old)])
    assert result.exit_code != 0 and old.read_text() == "kept\n"


def test_pending_file_replaces_only_when_finished(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    f = PendingFile(target)
    f.write("new")
    assert target.read_text() == "old"  # nobody sees half a file
    f.close()
    assert target.read_text() == "new" and not list(tmp_path.glob(".r.json*"))
    g = PendingFile(target)
    g.write("broken")
    g.discard()
    assert target.read_text() == "new"


def test_records_written_before_an_interruption_are_kept(tmp_path):
    out = tmp_path / "r.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with RecordWriter(jsonl=out) as w:
            w.write({"path": "a", "faces": []})
            raise KeyboardInterrupt
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["a"]


def test_inputs_reached_twice_run_once(photo, tmp_path):
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["predict", str(photo), str(photo.parent), str(photo.parent / "*.jpg"),
                                 "--jsonl", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 1


def test_a_missing_file_is_an_error_not_an_image(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "nosuch.jpg")])
    assert result.exit_code == 1 and "0 image(s)" in result.output and "1 error(s)" in result.output


def test_video_ctrl_c_exits_130_with_complete_records(monkeypatch, tmp_path):
    import ferkit.video as video
    from ferkit.pipeline.tracking import TrackedFace

    def interrupted(*args, **kwargs):
        from ferkit.core.labels import EMOTIONS

        probs = {e: float(e == "happy") for e in EMOTIONS}
        tracked = TrackedFace(0, (1, 2, 3, 4), 0.9, "happy", probs, probs)
        yield video.FrameResult(0, 0.0, [tracked])
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "stream", interrupted)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0")
    out = tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["video", str(clip), "--jsonl", str(out)])
    assert result.exit_code == 130, result.output
    assert [json.loads(line)["track_id"] for line in out.read_text().splitlines()] == [0]


def test_finetune_checks_its_output_folder_before_any_work(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    result = runner.invoke(app, ["finetune", str(tmp_path), "--out", str(notes)])
    assert result.exit_code == 2 and "--out is a file" in result.output and notes.read_text() == "mine"
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"my model")
    result = runner.invoke(app, ["finetune", str(tmp_path), "--out", str(model)])
    assert result.exit_code == 2 and "add --overwrite" in result.output
    assert (model / "model.onnx").read_bytes() == b"my model"
    result = runner.invoke(app, ["finetune", str(tmp_path), "--out", str(tmp_path / "new"), "--layers", "some"])
    assert result.exit_code == 2 and "unknown --layers 'some'" in result.output


def test_evaluate_checks_its_json_before_the_evaluation(tmp_path):
    result = runner.invoke(app, ["evaluate", "--photos", str(tmp_path), "--json", str(tmp_path / "missing" / "r.json")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated", b"", "foreign"])
def test_resume_from_a_broken_or_foreign_checkpoint_says_so_in_one_line(content, tmp_path):
    import torch

    from conftest import make_faces, write_csv

    images, labels = make_faces(40)
    data = write_csv(tmp_path / "d.csv", images, labels)
    run = tmp_path / "run"
    run.mkdir()
    if content == "foreign":
        torch.save({"weights": torch.zeros(3)}, run / "checkpoint.pt")
    else:
        (run / "checkpoint.pt").write_bytes(content)
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--resume", "--epochs", "1",
                                 "--model", "linear", "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(run / "checkpoint.pt") in result.output
    assert ("not a readable checkpoint" in result.output) or ("not a ferkit training checkpoint" in result.output)


def test_a_labels_csv_with_half_a_box_is_refused(tmp_path):
    from ferkit.data.fer2013 import DataError
    from ferkit.data.photoset import read_photo_set

    (tmp_path / "labels.csv").write_text("path,emotion,x,y\na.jpg,happy,1,2\n")
    with pytest.raises(DataError, match="has box column\\(s\\) x,y but not w,h"):
        read_photo_set(tmp_path)


def test_video_show_without_windows_is_refused_up_front(monkeypatch, tmp_path):
    import ferkit.video as video

    monkeypatch.setattr(video, "has_windows", lambda: False)
    old = tmp_path / "old.jsonl"
    old.write_text("kept\n")
    result = runner.invoke(app, ["video", "--camera", "0", "--show", "--jsonl", str(old)])
    assert result.exit_code == 2 and "ferkit serve" in result.output and "Traceback" not in result.output
    assert old.read_text() == "kept\n"


def test_camera_show_without_windows_opens_the_browser_page(monkeypatch):
    """Issue 32 item 6: on the shipped headless OpenCV, `video --camera 0 --show` is a live preview in the browser
    (ferkit serve's page on 127.0.0.1), not a refusal."""
    import webbrowser

    import ferkit.serve
    import ferkit.video as video

    monkeypatch.setattr(video, "has_windows", lambda: False)
    opened, served = [], []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    monkeypatch.setattr(ferkit.serve, "run_server", lambda config, **kw: served.append((config, kw)))
    result = runner.invoke(app, ["video", "--camera", "0", "--show"])
    assert result.exit_code == 130, result.output  # the server returns when stopped (Ctrl-C), as a stopped video
    assert len(opened) == 1 and opened[0].startswith("http://127.0.0.1:80") and "browser" in result.output
    config, kw = served[0]
    assert kw["host"] == "127.0.0.1" and opened[0] == f"http://127.0.0.1:{kw['port']}/" and kw["app"] is not None
    result = runner.invoke(app, ["video", "clip.mp4", "--show"])  # a file cannot be shown in the browser page
    assert result.exit_code == 2 and "ferkit serve" in result.output


def test_the_shipped_headless_opencv_has_no_windows():
    import cv2

    from ferkit.video import has_windows

    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    assert has_windows() == (bool(gui) and "NONE" not in gui[0])
    if "headless" in getattr(cv2, "__file__", "") or any("NONE" in g for g in gui):
        assert not has_windows()


def test_video_without_outputs_prints_each_tracks_summary(tmp_path):
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    result = runner.invoke(app, ["video", str(clip)])
    assert result.exit_code == 0, result.output
    assert "track 0: 8 frames" in result.output  # stdout: the summary; stderr: the frame count


def test_finetune_leaves_out_copies_with_conflicting_labels_and_keeps_copies_together(tmp_path):
    from test_finetune import make_subject_photos

    data = make_subject_photos(tmp_path / "photos", per_class=5)
    shutil.copy(data / "happy" / "happy_0.jpg", data / "sad" / "copy_of_happy_0.jpg")  # conflicting labels
    for k in range(3):  # agreeing copies: never on both sides of the split
        shutil.copy(data / "surprise" / f"surprise_{k}.jpg", data / "surprise" / f"again_{k}.jpg")
    out = tmp_path / "tuned"
    result = runner.invoke(app, ["finetune", str(data), "--out", str(out), "--epochs", "5", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "conflicting labels, left out" in result.output
    skipped = (out / "skipped.csv").read_text()
    assert "copy_of_happy_0.jpg" in skipped and "happy_0.jpg" in skipped
    report = json.loads((out / "finetune.json").read_text())
    assert report["faces"] == 5 * 3 + 3 - 1  # the two conflicting copies out, the agreeing ones in


def test_copies_never_sit_on_both_sides_of_the_split(tmp_path):
    from ferkit.data.dedupe import file_hashes as _file_hashes, keep_duplicates_together

    for name, content in [("a", b"1"), ("b", b"1"), ("c", b"2"), ("d", b"3")]:
        (tmp_path / name).write_bytes(content)
    paths = [str(tmp_path / n) for n in "abcd"]
    train, held = keep_duplicates_together(_file_hashes(paths), np.array([0, 2]), np.array([1, 3]))
    assert train.tolist() == [0, 1, 2] and held.tolist() == [3]


def test_annotation_panels_cover_no_other_face_and_labels_stay_inside():
    from ferkit.pipeline.annotate import _overlap, place_panel

    # three faces in a row, 10 px apart: right of the first is the second face; the panel goes elsewhere
    boxes = [(10, 100, 100, 100), (120, 100, 100, 100), (230, 100, 100, 100)]
    placed = []
    for b in boxes:
        left, top = place_panel(b, (60, 70), (340, 320), boxes + placed)
        rect = (left, top, 60, 70)
        assert not any(_overlap(rect, o) for o in boxes + placed)
        assert 0 <= left <= 340 - 60 and 0 <= top <= 320 - 70
        placed.append(rect)


def test_an_annotated_group_photo_keeps_every_caption_whole(tmp_path):
    from conftest import group_photo

    photos = tmp_path / "p"
    photos.mkdir()
    cv2.imwrite(str(photos / "group.jpg"), group_photo(3))
    result = runner.invoke(app, ["predict", str(photos), "--annotate", str(tmp_path / "a"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "group.png").exists()
