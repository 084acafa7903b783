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

from ferkit.architecture import MOVED, MOVED_NAMES, PACKAGES  # the table lives in the package

ROOT = Path(__file__).resolve().parent.parent


LEAVES = frozenset(new.split(".")[1] for new in MOVED.values() if "." in new)  # module names inside the new folders
_NAMES = "|".join(re.escape(n) for n in sorted(MOVED, key=len, reverse=True))
_FROM_LINE = re.compile(rf"^(?P<indent>[ \t]*)from ferkit(?:\.(?P<package>{'|'.join(PACKAGES)}))? import "
                        rf"(?P<names>\([^)]*\)|[^\n]*)", re.M)
_MOVED_NAME = re.compile(rf"(?<![\w.])({_NAMES})\b")
_PATH_OR_DOTTED = re.compile(rf"(?<![\w.])ferkit/(?P<pmod>{_NAMES})\.py\b"  # a file path
                             rf"|\bferkit\.(?P<dmod>{_NAMES})\b(?![-/])(?P<rest>\.\w+)?")  # a dotted name
_IMPORT_FOLLOWS = re.compile(r"[ \t]+import[ \t]")


def _rewrite_from(m: re.Match, warnings: list[str], resolve_packages: bool) -> str:
    """``from ferkit import a, b`` or ``from ferkit.data import x, (y)``: each name routed to its new module; one
    line per module, in the order they first appear."""
    indent, package, body = m.group("indent"), m.group("package"), m.group("names")
    comment = ""
    if body.rstrip().endswith("\\") or ";" in body.split("#")[0]:
        warnings.append(f"left as it is (a backslash continuation or two statements on a line): {m.group(0).strip()}")
        return m.group(0)
    if "#" in body and not body.startswith("("):  # from ferkit import preprocess  # noqa: keep the comment
        body, comment = body[:body.index("#")].rstrip(), "  " + body[body.index("#"):]
    if "#" in body:
        warnings.append(f"left as it is (a comment inside the parentheses): {m.group(0).strip()}")
        return m.group(0)
    names = [n.strip() for n in body.strip().strip("()").replace("\n", " ").split(",") if n.strip()]
    groups: dict[str, list[str]] = {}
    for entry in names:
        name = entry.split()[0]
        if package is None and name in MOVED and (resolve_packages or name not in PACKAGES):  # import preprocess
            parent, _, leaf = MOVED[name].rpartition(".")
            module, entry = (f"ferkit.{parent}", leaf + (entry[len(name):] or (f" as {name}" if leaf != name else ""))) \
                if parent else ("ferkit", MOVED[name] + (entry[len(name):] or f" as {name}"))
        elif package is None or name in LEAVES:  # from ferkit import Recognizer; from ferkit.data import sources
            module = "ferkit" + (f".{package}" if package else "")
        else:  # from ferkit.data import relabel / load_fer2013
            module = "ferkit." + MOVED_NAMES.get(package, {}).get(name, MOVED[package])
        groups.setdefault(module, []).append(entry)
    lines = [f"{indent}from {module} import {', '.join(entries)}" for module, entries in groups.items()]
    lines[0] += comment
    return "\n".join(lines)


def rewrite(text: str, warnings: list[str] | None = None, *, resolve_packages: bool = False) -> str:
    """``text`` with every old module path (``from ferkit import preprocess``, ``ferkit.recognize``,
    ``ferkit/recognize.py``, ``from ferkit.data import relabel``) replaced by the new one; a new path is left as it
    is, so rewriting twice changes nothing (``ferkit.runtime.detect`` stays, ``ferkit.runtime.Classifier`` becomes
    ``ferkit.runtime.classifier.Classifier``). ``ferkit.data`` and ``ferkit.runtime`` themselves are left as they
    are (the folders serve their old modules' names) unless ``resolve_packages``, which points them at
    ``ferkit.data.fer2013`` and ``ferkit.runtime.classifier`` as the move did. What it cannot rewrite is appended
    to ``warnings``."""
    warnings = [] if warnings is None else warnings

    def from_one(m: re.Match) -> str:
        if m.group("package") is None and not _MOVED_NAME.search(m.group("names")):
            return m.group(0)  # from ferkit import Recognizer: nothing moved
        return _rewrite_from(m, warnings, resolve_packages)

    text = _FROM_LINE.sub(from_one, text)

    def one(m: re.Match) -> str:
        if m.group("pmod"):
            return "ferkit/" + MOVED[m.group("pmod")].replace(".", "/") + ".py"
        old, rest = m.group("dmod"), m.group("rest") or ""
        if old in PACKAGES:
            if rest[1:] in LEAVES or (not rest and (_IMPORT_FOLLOWS.match(m.string, m.end()) or not resolve_packages)):
                return m.group(0)  # ferkit.runtime.detect, `from ferkit.data import ...` (done above), ferkit.data
            return "ferkit." + MOVED_NAMES.get(old, {}).get(rest[1:], MOVED[old]) + rest
        return "ferkit." + MOVED[old] + rest

    return _PATH_OR_DOTTED.sub(one, text)


def only_paths_changed(old: str, new: str) -> bool:
    """Whether ``new`` is ``old`` with module paths rewritten by :func:`rewrite` (either way for the two folders
    that were modules) and nothing else."""
    return new in (rewrite(old), rewrite(old, resolve_packages=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rewrite", help="rewrite old import paths in these files, in place")
    r.add_argument("files", nargs="+", type=Path)
    c = sub.add_parser("check-only-paths", help="files changed since REV differ only in moved module paths")
    c.add_argument("rev")
    c.add_argument("paths", nargs="*", default=["tests"], help="paths from the repository root (default: tests)")
    args = parser.parse_args()
    if args.command == "rewrite":
        for path in args.files:
            text, warnings = path.read_text(), []
            new = rewrite(text, warnings)
            if new != text:
                path.write_text(new)
                print(f"rewrote {path}")
            for warning in warnings:
                print(f"{path}: {warning}", file=sys.stderr)
        return
    changed = subprocess.run(["git", "diff", "--name-only", args.rev, "--", *args.paths], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()  # paths from the repo root
    other = []
    for name in changed:
        old = subprocess.run(["git", "show", f"{args.rev}:{name}"], cwd=ROOT, capture_output=True)
        new = (ROOT / name).read_bytes() if (ROOT / name).exists() else b""
        try:
            same = old.returncode == 0 and only_paths_changed(old.stdout.decode(), new.decode())
        except UnicodeDecodeError:  # a binary file: only an identical one counts as unchanged
            same = old.stdout == new
        print(f"{name}: {'only moved module paths' if same else 'OTHER CHANGES'}")
        other += [] if same else [name]
    print(f"{len(changed)} files changed since {args.rev}, {len(other)} with other changes")
    sys.exit(1 if other else 0)


if __name__ == "__main__":
    main()
