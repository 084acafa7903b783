"""Every command of docs/recipes.md runs as written on generated inputs (issue 32, item 7)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from test_identity import make_two_people
from test_video import make_clip

RECIPES = Path(__file__).resolve().parent.parent / "docs" / "recipes.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", RECIPES.read_text(), flags=re.S)


@pytest.fixture
def inputs(tmp_path):
    make_two_people(tmp_path / "event", per_person=2)
    make_clip(tmp_path / "clip.mp4", frames=30, two=True)
    return tmp_path


def test_the_shell_recipes_run_as_written(inputs):
    pytest.importorskip("scipy")
    pytest.importorskip("matplotlib")
    commands = [line.strip() for block in blocks("bash") for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "ferkit"
        done = subprocess.run([str(Path(sys.executable).parent / "ferkit"), *argv[1:]], cwd=inputs,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
    for made in ("faces.csv", "people.png", "timeline.png", "rows.jsonl"):
        assert (inputs / made).stat().st_size > 0, made
    assert any((inputs / "crops").iterdir())


def test_the_python_recipe_runs_as_written(inputs, monkeypatch, capsys):
    pytest.importorskip("pandas")
    (code,) = blocks("python")
    monkeypatch.chdir(inputs)
    exec(compile(code, str(RECIPES), "exec"), {})
    out = capsys.readouterr().out
    assert "emotion" in out and "track_id" in out
