"""Face crops written beside the records and DataFrames of results (issue 32, items 2 and 3)."""

import json
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import group_photo
from ferkit.cli import app

runner = CliRunner()


@pytest.fixture
def photos(tmp_path):
    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(SAMPLE_PHOTO.read_bytes())
    cv2.imwrite(str(folder / "sub" / "a.png"), group_photo(3))  # the same stem in another folder
    cv2.imwrite(str(folder / "blank.png"), np.full((90, 120, 3), 128, np.uint8))
    return folder


def test_predict_crops_are_what_the_model_saw_and_named_in_the_records(photos, tmp_path):
    from ferkit.pipeline.recognize import Recognizer

    crops = tmp_path / "crops"
    result = runner.invoke(app, ["predict", str(photos), "--crops", str(crops), "--jsonl", str(tmp_path / "r.jsonl"),
                                 "--csv", str(tmp_path / "r.csv"), "--no-progress"])
    assert result.exit_code == 0, result.output
    records = {r["path"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    written = sorted(p.relative_to(crops).as_posix() for p in crops.rglob("*.png"))
    assert written == ["a_face0.png", "sub/a_face0.png", "sub/a_face1.png", "sub/a_face2.png"]
    rec = Recognizer()
    for path, record in records.items():
        if not record["faces"]:
            continue
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        model_saw = rec.crops(rgb, rec.locate(rgb))
        for face, crop in zip(record["faces"], model_saw):
            on_disk = cv2.imread(face["crop"], cv2.IMREAD_UNCHANGED)
            on_disk = on_disk if on_disk.ndim == 2 else cv2.cvtColor(on_disk, cv2.COLOR_BGR2RGB)
            assert on_disk.shape == rec.spec.face_shape and np.array_equal(on_disk, crop), face["crop"]
    assert "crop" in open(tmp_path / "r.csv").readline()
    # a crops folder among the inputs is refused before any work, and so is one shared with --annotate
    result = runner.invoke(app, ["predict", str(photos), "--crops", str(photos / "crops")])
    assert result.exit_code == 2 and "a folder of inputs" in result.output and not (photos / "crops").exists()
    result = runner.invoke(app, ["predict", str(photos), "--crops", str(tmp_path / "same"), "--annotate",
                                 str(tmp_path / "same")])
    assert result.exit_code == 2 and "name the same folder" in result.output and not (tmp_path / "same").exists()


def test_video_crops_every_nth_frame_of_each_track(tmp_path):
    from test_video import make_clip

    clip = make_clip(tmp_path / "c.mp4", frames=12)
    result = runner.invoke(app, ["video", str(clip), "--crops", str(tmp_path / "vc"), "--crops-every", "5",
                                 "--jsonl", str(tmp_path / "v.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    with_crops = [r for r in rows if "crop" in r]
    assert [r["frame"] for r in with_crops] == [0, 5, 10] and {r["track_id"] for r in rows} == {0}
    assert sorted(p.name for p in (tmp_path / "vc").iterdir()) == ["track0_frame000000.png", "track0_frame000005.png",
                                                                 "track0_frame000010.png"]
    for r in with_crops:
        assert cv2.imread(r["crop"]) is not None


def test_dataframes_of_photos_and_video(photos, tmp_path):
    pd = pytest.importorskip("pandas")
    import ferkit
    from ferkit.pipeline.outputs import CSV_FIELDS, VIDEO_FIELDS
    from ferkit.pipeline.recognize import Recognizer
    from ferkit.video import stream
    from test_video import make_clip

    rec = Recognizer()
    results = list(rec.predict_paths(sorted(photos.rglob("*.*"))))
    df = ferkit.to_pandas(results)
    assert list(df.columns) == CSV_FIELDS and len(df) == 1 + 1 + 3  # a blank photo keeps a row of its own
    faces = df.dropna(subset=["emotion"])
    assert len(faces) == 4 and faces["yaw"].dtype == float and faces["x"].dtype.kind in "if"
    probs = faces[["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]].sum(axis=1)
    assert np.allclose(probs, 1, atol=1e-3)
    one = results[0].to_pandas()
    assert len(one) == len(results[0].faces) or (len(one) == 1 and not results[0].faces)
    same = ferkit.to_pandas([r.to_dict() for r in results])  # the records read back from JSON give the same table
    pd.testing.assert_frame_equal(df, same)
    clip = make_clip(tmp_path / "c.mp4", frames=6)
    video = ferkit.to_pandas(stream(clip))
    assert list(video.columns) == VIDEO_FIELDS and len(video) == 6 and list(video["frame"]) == list(range(6))
    assert (video["track_id"] == 0).all() and np.allclose(video[[c for c in VIDEO_FIELDS if c.startswith("smoothed_")]]
                                                          .sum(axis=1), 1, atol=1e-3)


def test_to_pandas_without_pandas_gives_the_hint(monkeypatch):
    from ferkit.pipeline.outputs import to_pandas

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        to_pandas([])


def _png(path):
    img = cv2.imread(str(path))
    assert img is not None, path
    assert img.std() > 20  # drawn, not blank
    return img


def test_video_plot_draws_one_panel_per_track(tmp_path):
    from ferkit.pipeline.charts import DPI
    from test_video import make_clip

    clip = make_clip(tmp_path / "two.mp4", frames=20, two=True)
    result = runner.invoke(app, ["video", str(clip), "--plot", str(tmp_path / "timeline.png")])
    assert result.exit_code == 0, result.output
    assert f"chart written to {tmp_path / 'timeline.png'}" in result.output
    img = _png(tmp_path / "timeline.png")
    assert img.shape[:2] == (int(round((1.6 + 1.7 * 2) * DPI)), 10 * DPI)  # two tracks: two panels
    # the happy astronaut's panel is mostly the happy colour
    from ferkit.pipeline.charts import COLOURS

    happy = np.array([int(COLOURS["happy"][i:i + 2], 16) for i in (5, 3, 1)])  # BGR
    assert (np.abs(img.astype(int) - happy).sum(axis=2) < 30).mean() > 0.05


def test_predict_plot_and_missing_matplotlib(photos, tmp_path, monkeypatch):
    from ferkit.pipeline.charts import DPI

    result = runner.invoke(app, ["predict", str(photos), "--plot", str(tmp_path / "dist.png"), "--no-progress"])
    assert result.exit_code == 0, result.output
    img = _png(tmp_path / "dist.png")
    assert img.shape[:2] == (int(round(3.6 * DPI)), 12 * DPI)  # two photos with faces: the minimum height
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = runner.invoke(app, ["predict", str(photos), "--plot", str(tmp_path / "x.png"), "--jsonl",
                                 str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "pip install matplotlib" in result.output
    assert not (tmp_path / "x.jsonl").exists()  # refused before any work
