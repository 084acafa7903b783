import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ferkit.cli import app
from ferkit.weights import DEFAULT_MODEL

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["train"], ["evaluate"], ["summary"], ["data", "info"], ["classify"],
                                  ["models"], ["export"], ["calibrate"], ["data", "pack"], ["predict"],
                                  ["video"]])
def test_every_command_has_help(args):
    result = runner.invoke(app, args + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output) > 140


def test_summary_prints_the_papers_total():
    result = runner.invoke(app, ["summary", "seed"])
    assert result.exit_code == 0
    assert "11,911,979" in result.output and "5,766,400" in result.output and "(8, 8, 100)" in result.output


def test_summary_unknown_model():
    result = runner.invoke(app, ["summary", "nope"])
    assert result.exit_code == 1 and "unknown model 'nope'" in result.output


def test_data_info(tiny_csv):
    result = runner.invoke(app, ["data", "info", str(tiny_csv)])
    assert result.exit_code == 0, result.output
    assert "350 faces" in result.output and "PublicTest" in result.output
    assert result.output.splitlines()[-1].split() == ["total", "280", "70", "350"]


def test_data_info_bad_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    result = runner.invoke(app, ["data", "info", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv: row 2: 3 pixel values" in result.output
    assert "Traceback" not in result.output


def test_train_then_evaluate_the_run(tiny_csv, tmp_path, tiny_model_name):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(tiny_csv), "--out", str(out), "--model", tiny_model_name,
                                 "--epochs", "2", "--batch-size", "32", "--val-fraction", "0.2", "--preset", "fast"])  # >= 50 held out to calibrate
    assert result.exit_code == 0, result.output
    assert "epoch   2/2" in result.output
    result = runner.invoke(app, ["evaluate", "--data", str(tiny_csv), "--weights", str(out / "model.safetensors"),
                                 "--train-accuracy", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    for key in ("accuracy", "top2_accuracy", "per_class", "confusion", "second_guess", "model", "data", "split", "n",
                "train_accuracy", "overfit_ratio"):
        assert key in report
    assert report["n"] == 70 and 0 <= report["accuracy"] <= report["top2_accuracy"] <= 1
    assert "overfit ratio" in result.output and "ECE" in result.output and 0 <= report["ece"] <= 1
    result = runner.invoke(app, ["calibrate", str(out / "model.safetensors"), "--data", str(tiny_csv)])
    assert result.exit_code == 0, result.output
    assert "temperature" in result.output and "ECE" in result.output


def test_data_pack_roundtrip(tiny_csv, tmp_path):
    result = runner.invoke(app, ["data", "pack", str(tiny_csv), str(tmp_path / "d.npz"), "--split", "public"])
    assert result.exit_code == 0, result.output
    assert "70 faces" in result.output
    result = runner.invoke(app, ["data", "info", str(tmp_path / "d.npz")])
    assert result.exit_code == 0 and "PublicTest" in result.output and "Training" not in result.output
    result = runner.invoke(app, ["data", "pack", str(tiny_csv), str(tmp_path / "d.csv")])
    assert result.exit_code == 1 and "must end in .npz" in result.output


def test_train_bad_preset(tiny_csv, tmp_path):
    result = runner.invoke(app, ["train", "--data", str(tiny_csv), "--out", str(tmp_path / "r"), "--preset", "nope"])
    assert result.exit_code == 1 and "unknown preset 'nope'" in result.output


def test_classify_bundled_sample_without_torch_imported():
    # The quick-start job, in a fresh interpreter: it must not need PyTorch.
    code = ("import sys; from ferkit.cli import main\n"
            "try:\n    main(['classify', '--json', '-'])\nexcept SystemExit as e:\n    assert not e.code\n"
            "assert 'torch' not in sys.modules, 'classify imported torch'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    [record] = json.loads(out)
    assert record["schema_version"] == 1 and len(record["faces"]) == 1
    probs = record["faces"][0]["probabilities"]
    assert set(probs) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert abs(sum(probs.values()) - 1) < 1e-3


def test_classify_and_predict_no_detect_write_the_same_records(tmp_path):
    """One output module: the same records, the same --json/--jsonl/--csv, folders accepted by both."""
    import shutil

    from ferkit.pipeline.face_images import SAMPLE_FACE

    (tmp_path / "faces" / "more").mkdir(parents=True)
    shutil.copy(SAMPLE_FACE, tmp_path / "faces" / "a.png")
    shutil.copy(SAMPLE_FACE, tmp_path / "faces" / "more" / "b.png")
    outs = {}
    for command in (["classify"], ["predict", "--no-detect", "--no-progress"]):
        target = tmp_path / f"{command[0]}.jsonl"
        result = runner.invoke(app, [*command, str(tmp_path / "faces"), "--jsonl", str(target),
                                     "--csv", str(tmp_path / f"{command[0]}.csv")])
        assert result.exit_code == 0, result.output
        outs[command[0]] = [json.loads(line) for line in target.read_text().splitlines()]
        assert (tmp_path / f"{command[0]}.csv").read_text().startswith("path,width,height,face,")
    assert outs["classify"] == outs["predict"] and len(outs["classify"]) == 2
    result = runner.invoke(app, ["classify", str(tmp_path / "faces"), "--csv", "-"])
    assert result.exit_code == 0 and result.output.splitlines()[0].startswith("path,width,height")
    assert len(result.output.splitlines()) == 3  # header + one row per face, nothing else on stdout


def test_classify_reports_bad_files_and_keeps_going(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG broken")
    from ferkit.pipeline.face_images import SAMPLE_FACE

    result = runner.invoke(app, ["classify", str(bad), str(SAMPLE_FACE), str(tmp_path / "missing.png")])
    assert result.exit_code == 1
    assert "broken.png: not a readable image" in result.output
    assert "missing.png: no such file" in result.output
    assert "sample_face.png:" in result.output


def test_evaluate_default_model(tiny_csv):
    result = runner.invoke(app, ["evaluate", "--data", str(tiny_csv), "--split", "PublicTest", "--json", "-"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"] == DEFAULT_MODEL and report["split"] == "PublicTest" and report["n"] == 70
    from ferkit.runtime.spec import resolve_spec

    assert report["tta"] is resolve_spec().tta and 0 <= report["ece"] <= 1  # the default's own TTA choice
    for flag, used in (("--tta", True), ("--no-tta", False)):
        result = runner.invoke(app, ["evaluate", "--data", str(tiny_csv), flag, "--json", "-"])
        assert json.loads(result.output)["tta"] is used


def run_main(argv, capsys):
    """The console script itself (not CliRunner): exit code, stdout, stderr."""
    from ferkit.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize("argv, option", [
    (["predict", "--max-side", "0"], "--max-side"), (["predict", "--threads", "-3"], "--threads"),
    (["video", "x.mp4", "--window", "0"], "--window"), (["video", "x.mp4", "--detect-every", "0"], "--detect-every"),
    (["serve", "--workers", "0"], "--workers"), (["serve", "--port", "70000"], "--port"),
    (["train", "--data", "x.csv", "--out", "r", "--epochs", "0"], "--epochs"),
    (["evaluate", "--photos", "p", "--max-side", "8"], "--max-side"), (["predict", "--scales", "many"], "--scales"),
    (["video", "x.mp4", "--scales", "pyramid"], "--scales")])
def test_out_of_range_numbers_are_refused_in_one_line(argv, option, capsys):
    code, out, err = run_main(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and option in err and "--help" in err


def test_usage_errors_are_one_line_and_version_prints(capsys, monkeypatch):
    code, _, err = run_main(["classify", "--bogus"], capsys)
    assert code == 2 and err == "error: No such option: --bogus (see `ferkit classify --help`)\n"
    code, _, err = run_main(["nope"], capsys)
    assert code == 2 and err.count("\n") == 1 and "No such command 'nope'" in err
    code, out, _ = run_main(["--version"], capsys)
    from importlib.metadata import version

    assert code == 0 and out == f"ferkit {version('ferkit')}\n"
    monkeypatch.setenv("COLUMNS", "250")  # help wraps to the terminal, at hyphens too
    code, out, _ = run_main(["train", "--help"], capsys)
    assert code == 0 and all(p in out for p in ("paper-aug", "accurate", "ferplus-votes", "equalize_hist"))


@pytest.mark.parametrize("argv", [
    ["predict", "--json", "{missing}/r.json"], ["predict", "--jsonl", "{missing}/r.jsonl"],
    ["predict", "--csv", "{dir}"], ["predict", "--annotate", "{file}"], ["predict", "--json", "{file}/r.json"],
    ["video", "clip.mp4", "--jsonl", "{missing}/t.jsonl"], ["video", "clip.mp4", "--summary-json", "{dir}"],
    ["video", "clip.mp4", "--out", "{file}/a.mp4"]])
def test_unwritable_outputs_fail_first_in_one_line(argv, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    places = {"missing": tmp_path / "no" / "such", "dir": tmp_path, "file": tmp_path / "file"}
    code, out, err = run_main([a.format(**places) for a in argv], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert "image(s)" not in err and out == ""  # nothing was processed


def test_unwritable_folder_is_refused_before_work(tmp_path, monkeypatch):
    import os

    from ferkit.pipeline.outputs import OutputError, check_writable

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("ro") else real_access(p, mode))
    (tmp_path / "ro").mkdir()
    with pytest.raises(OutputError, match="not writable"):
        check_writable(tmp_path / "ro" / "r.json")
    with pytest.raises(OutputError, match="folder is not writable"):
        check_writable(tmp_path / "ro", folder=True)
    check_writable("-")
    check_writable(tmp_path / "new" / "deeper", folder=True)
    assert (tmp_path / "new" / "deeper").is_dir()


def _commands(command, path=()):
    """Every click command under ``command`` with its name path."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, path + (name,))


def test_help_reads_at_80_columns_and_keeps_its_brackets():
    """Help is plain text wrapped to the terminal (issue 31: rich's tables squeezed descriptions into ~20 columns,
    predict's help ran to 162 lines at 80 columns, flags showed <bool>); brackets print as written."""
    for path, command in _commands(typer_command()):
        if not path:
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, path
        lines = result.output.splitlines()
        assert max(len(line) for line in lines) <= 80, path
        assert "<bool>" not in result.output, path
        assert not [line for line in lines if "\\[" in line], path
    result = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "80"})
    assert len(result.output.splitlines()) < 100
    assert "pip install 'ferkit[ray]'" in " ".join(result.output.split()), result.output
    assert "[x, y, w, h], detector" in " ".join(result.output.split())


def typer_command():
    import typer

    return typer.main.get_command(app)


@pytest.mark.parametrize("args", [["predict", "{photo}", "--out", "{out}"], ["video", "{photo}", "--rows", "{out}"]])
def test_engine_ray_without_ray_gives_the_install_hint(args, monkeypatch, tmp_path):
    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    args = [a.format(photo=SAMPLE_PHOTO, out=tmp_path / "out") for a in args]
    result = runner.invoke(app, [*args, "--engine", "ray"])
    assert result.exit_code == 1
    assert result.output == "error: --engine ray needs Ray Data: pip install 'ferkit[ray]'\n"


def test_models_lists_the_face_detectors():
    """Issue 31 item 22: `ferkit models` names every --detector choice, the default marked, with its file."""
    from ferkit.runtime.detect import list_detectors
    from ferkit.weights import DEFAULT_DETECTOR

    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("face detectors (--detector):")
    listed = lines[start + 1:]
    assert [line.split()[0].rstrip(":") for line in listed] == list_detectors()
    assert any(line.startswith(f"  {DEFAULT_DETECTOR} (default):") and "MB" in line for line in listed)
