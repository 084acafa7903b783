"""The modules issue 33 moved into the layer folders, and two uses of that table.

    python tools/moved_modules.py rewrite FILE...       # update your own scripts' imports (ferkit.recognize -> ...)
    python tools/moved_modules.py check-only-paths REV [PATH...]
        # every file changed since REV under PATH (default tests/) differs from its REV version only in these
        # module paths: what "the test suite passed with only import paths edited" means, checked

CHANGELOG.md lists the same table; docs/architecture.md explains the layout.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

MOVED: dict[str, str] = {  # old module (under ferkit.) -> new module
    **{m: f"core.{m}" for m in ("labels", "images", "provenance", "profiling", "inference")},
    **{m: f"runtime.{m}" for m in ("onnx_io", "detect", "crop", "spec", "identity", "preprocess", "pose")},
    "runtime": "runtime.classifier",
    **{m: f"pipeline.{m}" for m in ("decode", "recognize", "tracking", "classify", "annotate", "outputs", "charts")},
    "data": "data.fer2013",
    **{m: f"data.{m}" for m in ("ferplus", "photoset", "sources", "datainfo", "augment", "dedupe")},
    **{m: f"analysis.{m}" for m in ("evaluate", "calibrate", "export", "ensemble", "photos", "visualize", "views",
                                    "catalog")},
}


def _alternation(names) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def rewrite(text: str) -> str:
    """``text`` with every old module path (``ferkit.recognize``, ``from ferkit import preprocess``,
    ``ferkit/recognize.py``) replaced by the new one; a new path is left as it is, so rewriting twice changes nothing
    (``ferkit.runtime.detect`` stays, ``ferkit.runtime.Classifier`` becomes ``ferkit.runtime.classifier.Classifier``)."""
    names = _alternation(MOVED)
    leaves = _alternation({new.split(".")[1] for new in MOVED.values()})  # so that rewriting twice changes nothing
    pattern = re.compile(rf"^(?P<indent>[ \t]*)from ferkit import (?P<fmod>{names})(?P<alias>[ \t]+as[ \t]+\w+)?"
                         rf"(?=[ \t]*(?:#.*)?$)"  # one module on the line: `from ferkit import preprocess`
                         rf"|\bferkit/(?P<pmod>{names})\.py\b"  # a file path
                         rf"|\bferkit\.(?P<dmod>{names})\b(?![-/])", re.M)  # a dotted name
    # ferkit.runtime and ferkit.data are folders now: `ferkit.runtime.detect`, `from ferkit.data import sources` are new
    new_inside = re.compile(rf"\.(?:{leaves})\b|[ \t]+import[ \t]+(?:{leaves})\b")

    def one(m: re.Match) -> str:
        if m.group("fmod"):
            parent, leaf = MOVED[m.group("fmod")].split(".")
            alias = m.group("alias") or (f" as {m.group('fmod')}" if leaf != m.group("fmod") else "")
            return f"{m.group('indent')}from ferkit.{parent} import {leaf}{alias}"
        if m.group("pmod"):
            return "ferkit/" + MOVED[m.group("pmod")].replace(".", "/") + ".py"
        if m.group("dmod") in ("runtime", "data") and new_inside.match(m.string, m.end()):
            return m.group(0)
        return "ferkit." + MOVED[m.group("dmod")]

    return pattern.sub(one, text)


def only_paths_changed(old: str, new: str) -> bool:
    """Whether ``new`` is ``old`` with module paths rewritten by :func:`rewrite` and nothing else."""
    return rewrite(old) == new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rewrite", help="rewrite old import paths in these files, in place")
    r.add_argument("files", nargs="+", type=Path)
    c = sub.add_parser("check-only-paths", help="files changed since REV differ only in moved module paths")
    c.add_argument("rev")
    c.add_argument("paths", nargs="*", default=["tests"])
    args = parser.parse_args()
    if args.command == "rewrite":
        for path in args.files:
            text = path.read_text()
            if rewrite(text) != text:
                path.write_text(rewrite(text))
                print(f"rewrote {path}")
        return
    changed = subprocess.run(["git", "diff", "--name-only", args.rev, "--", *args.paths], capture_output=True,
                             text=True, check=True).stdout.split()
    other = []
    for name in changed:
        old = subprocess.run(["git", "show", f"{args.rev}:{name}"], capture_output=True, text=True)
        new = Path(name).read_text() if Path(name).exists() else ""
        same = old.returncode == 0 and only_paths_changed(old.stdout, new)
        print(f"{name}: {'only moved module paths' if same else 'OTHER CHANGES'}")
        other += [] if same else [name]
    print(f"{len(changed)} files changed since {args.rev}, {len(other)} with other changes")
    sys.exit(1 if other else 0)


if __name__ == "__main__":
    main()
