"""Batch inference on Ray Data: a local Ray (2 CPUs, no cluster) gives the records of the plain commands."""

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ferkit.cli import app
from test_video import make_clip

ray = pytest.importorskip("ray", reason="the ray extra is part of the CI install: pip install -e '.[all]'")
runner = CliRunner()


@pytest.fixture(scope="module")
def local_ray():
    from ferkit.batch import init

    init(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def mixed_folder(tmp_path):
    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from conftest import group_photo

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(SAMPLE_PHOTO.read_bytes())
    cv2.imwrite(str(folder / "sub" / "group.png"), group_photo(3))
    cv2.imwrite(str(folder / "blank.png"), np.full((90, 120, 3), 128, np.uint8))  # no face
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def plain_records(folder, tmp_path, *extra):
    result = runner.invoke(app, ["predict", str(folder), "--jsonl", str(tmp_path / "plain.jsonl"), "--no-progress",
                                 *extra])
    assert result.exit_code == 1, result.output  # the broken file
    return [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]


def same_record(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        if key != "faces":
            assert a[key] == b[key], key
    assert len(a["faces"]) == len(b["faces"])
    for fa, fb in zip(a["faces"], b["faces"]):
        assert set(fa) == set(fb)
        assert {k: v for k, v in fa.items() if k != "probabilities"} == {k: v for k, v in fb.items()
                                                                            if k != "probabilities"}
        for e in fa["probabilities"]:  # rounded to 4 places; batches of other sizes may move the last digit
            assert abs(fa["probabilities"][e] - fb["probabilities"][e]) <= 1.01e-4


def test_ray_gives_the_records_of_plain_predict(local_ray, mixed_folder, tmp_path):
    expected = plain_records(mixed_folder, tmp_path)
    out = tmp_path / "results.parquet"
    result = runner.invoke(app, ["predict", str(mixed_folder), "--engine", "ray", "--num-workers", "2",
                                 "--out", str(out)])
    assert result.exit_code == 1, result.output  # one broken file: reported, the job finishes
    assert "4 image(s) -> 4 row(s)" in result.output and "1 error(s)" in result.output
    table = pq.read_table(out)
    from ferkit.batch import schemas

    assert table.schema.equals(schemas()["image"], check_metadata=False)
    got = table.to_pylist()
    assert [r["path"] for r in got] == [r["path"] for r in expected]  # input order kept
    for a, b in zip(got, expected):
        same_record(a, b)
    broken = next(r for r in got if r["path"].endswith("broken.jpg"))
    assert broken["error"] and broken["faces"] == [] and broken["width"] is None
    assert sum(len(r["faces"]) for r in got) == 4  # 1 + 3 people


def test_ray_per_face_rows_and_path_lists(local_ray, mixed_folder, tmp_path):
    import pyarrow as pa

    listing = tmp_path / "paths.parquet"
    files = sorted(str(p) for p in mixed_folder.rglob("*") if p.is_file())
    pq.write_table(pa.table({"path": files}), listing)
    out = tmp_path / "faces"
    result = runner.invoke(app, ["predict", str(listing), "--engine", "ray", "--out", str(out), "--per-face",
                                 "--format", "jsonl"])
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for f in sorted(out.glob("*.json*")) for line in f.read_text().splitlines()]
    assert len(rows) == 4 + 2  # 4 faces + one row each for the image without a face and the broken file
    assert {r["path"] for r in rows} == set(files)
    from ferkit.pipeline.outputs import CSV_FIELDS

    assert all(set(r) == set(CSV_FIELDS) for r in rows)
    result = runner.invoke(app, ["predict", str(listing), "--engine", "ray", "--out", str(out)])
    assert result.exit_code == 2 and "not an empty folder" in result.output  # nothing is overwritten


def test_predict_dataset_inside_a_users_pipeline(local_ray, mixed_folder):
    import ferkit.batch

    ds = ray.data.from_items([{"file": str(mixed_folder / "a.jpg")}, {"file": str(mixed_folder / "broken.jpg")}])
    rows = ferkit.batch.predict_dataset(ds, path_column="file", num_workers=1, min_confidence=0.99).take_all()
    assert rows[0]["faces"][0]["emotion"] == "uncertain" and rows[1]["error"]


def test_ray_videos_give_the_rows_of_ferkit_video(local_ray, tmp_path):
    clips = [make_clip(tmp_path / "one.mp4", frames=12), make_clip(tmp_path / "two.mp4", frames=10, two=True)]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"no video here")
    expected = {}
    for clip in clips:
        result = runner.invoke(app, ["video", str(clip), "--jsonl", str(tmp_path / f"{clip.stem}.jsonl"),
                                     "--summary-json", str(tmp_path / f"{clip.stem}.summary.json")])
        assert result.exit_code == 0, result.output
        expected[str(clip)] = [json.loads(x) for x in (tmp_path / f"{clip.stem}.jsonl").read_text().splitlines()]
    out = tmp_path / "rows"
    result = runner.invoke(app, ["video", *map(str, clips), str(broken), "--engine", "ray", "--rows", str(out),
                                 "--summary-json", str(tmp_path / "summary.json")])
    assert result.exit_code == 1, result.output  # the broken video is reported
    got = pq.read_table(out).to_pylist()
    for clip in clips:
        mine = [{k: v for k, v in r.items() if k not in ("video", "error")} for r in got if r["video"] == str(clip)]
        assert len(mine) == len(expected[str(clip)]) > 0
        for a, b in zip(mine, expected[str(clip)]):
            assert {k: a[k] for k in ("frame", "track_id", "box", "emotion")} == \
                   {k: b[k] for k in ("frame", "track_id", "box", "emotion")}
            assert all(abs(a["smoothed"][e] - b["smoothed"][e]) <= 1.01e-4 for e in b["smoothed"])
    assert [r for r in got if r["video"] == str(broken)][0]["error"]
    summaries = json.loads((tmp_path / "summary.json").read_text())
    for clip in clips:
        plain = json.loads((tmp_path / f"{clip.stem}.summary.json").read_text())
        assert [(t["track_id"], t["frames"], t["dominant_emotion"]) for t in summaries[str(clip)]] == \
               [(t["track_id"], t["frames"], t["dominant_emotion"]) for t in plain]


def test_engine_options_are_checked(tmp_path):
    result = runner.invoke(app, ["predict", "--engine", "spark", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown --engine 'spark'" in result.output
    result = runner.invoke(app, ["predict", "--engine", "ray"])
    assert result.exit_code == 2 and "--out" in result.output
    result = runner.invoke(app, ["predict", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--engine ray" in result.output
    result = runner.invoke(app, ["video", "a.mp4", "b.mp4"])
    assert result.exit_code == 2 and "--engine ray" in result.output


def test_a_successful_ray_run_prints_no_error_or_warning_lines(tmp_path):
    """Issue 31 item 22: a run that succeeds printed Ray's error-level core_worker line (actor restarts with
    arguments in the object store), its token and progress-bar notices, a false 'no available CPUs' warning and a
    UserWarning for a pool of more workers than batches."""
    import subprocess
    import sys

    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    out = tmp_path / "rows"
    done = subprocess.run([str(Path(sys.executable).parent / "ferkit"), "predict", str(SAMPLE_PHOTO), "--engine", "ray",
                           "--out", str(out), "--format", "jsonl"],  # one photo, 2 CPUs: no pool wider than its work
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 image(s) -> 1 row(s)" in done.stdout + done.stderr
    noise = [line for line in done.stderr.splitlines()
             if " E " in line or "ERROR" in line or "WARNING" in line or "Warning" in line
             or "warn" in line.lower()]
    assert noise == [], noise
