"""The figures of docs/recipes.md and docs/photos.md: the commands run on generated inputs (the test suite's two
people, 8 photos, and a 60-frame clip of both), their PNGs copied to docs/figures/recipe-people.png,
recipe-timeline.png and recipe-photos.png (`predict --plot` per photo).

Usage: python tools/recipe_figures.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from test_identity import make_two_people
    from test_video import make_clip

    ferkit = str(Path(sys.executable).parent / "ferkit")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_two_people(tmp / "event", per_person=4)
        make_clip(tmp / "clip.mp4", frames=60, two=True)
        subprocess.run([ferkit, "predict", "event/", "--group-people", "--csv", "faces.csv", "--plot", "people.png"],
                       cwd=tmp, check=True, capture_output=True)
        subprocess.run([ferkit, "video", "clip.mp4", "--plot", "timeline.png"], cwd=tmp, check=True,
                       capture_output=True)
        subprocess.run([ferkit, "predict", "event/", "--plot", "photos.png"], cwd=tmp, check=True, capture_output=True)
        for made, name in (("people.png", "recipe-people.png"), ("timeline.png", "recipe-timeline.png"),
                           ("photos.png", "recipe-photos.png")):
            shutil.copy(tmp / made, ROOT / "docs" / "figures" / name)
            print(ROOT / "docs" / "figures" / name)


if __name__ == "__main__":
    main()
