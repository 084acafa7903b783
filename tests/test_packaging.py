"""What the wheel carries: every data file under the package (weights, assets, the web page) is named by a
package-data pattern of pyproject.toml, so `pip install ferkit` ships it (a new weights folder once was not)."""

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_data_file_is_in_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ferkit"]
    package = ROOT / "src" / "ferkit"
    data = [p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    missing = [str(p.relative_to(package)) for p in data
               if not any(fnmatch.fnmatch(str(p.relative_to(package)), pat) and
                          str(p.relative_to(package)).count("/") == pat.count("/") for pat in patterns)]
    assert data and missing == []
