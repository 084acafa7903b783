"""Record what the ``ferkit`` command prints and writes for a fixed set of commands, to show a refactor changed nothing.

    python tools/cli_snapshot.py SNAPSHOT_DIR            # run every command, save one text file per command
    python tools/cli_snapshot.py --diff OLD_DIR NEW_DIR  # compare two snapshots; exit 1 on any difference

The set: ``--help`` of ``ferkit`` and every command (80 and 120 columns) and runs on generated inputs (the bundled
photo and face, a folder with copies, an unreadable file and a missing one, a 2-second clip made from the bundled
photo, a 70-row FER2013 CSV, a copy of the shipped ``seed.safetensors``): predict, classify, video, evaluate,
visualize, data info/pack, ensemble, export, calibrate (its refusal), models, summary and usage errors: exit
codes, stdout, stderr, and every file written (its SHA-256, the text of small text files, a .npz's arrays). Elapsed
times and rates (``0.1 s``, ``9.1 images/s``) and the package's own folder are masked, nothing else; ``SOURCE``
says which package folder and git revision ran, and ``--diff`` prints both. Not run: train, finetune and serve
(minutes, or a server; their tests cover them).

To compare another revision, run this script with that revision's source first on the path, e.g.::

    git worktree add /tmp/ferkit-old 83403c7
    PYTHONPATH=/tmp/ferkit-old/src python tools/cli_snapshot.py /tmp/snap-old
    python tools/cli_snapshot.py /tmp/snap-new && python tools/cli_snapshot.py --diff /tmp/snap-old /tmp/snap-new

Issue 33 (the subpackage layout) was checked this way (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS = ["train", "models", "summary", "data", "data info", "data pack", "evaluate", "calibrate", "finetune",
            "export", "ensemble", "classify", "predict", "video", "visualize", "serve"]

RUNS: list[tuple[str, list[str]]] = [
    ("version", ["--version"]),
    ("models", ["models"]),
    ("summary", ["summary"]),
    ("predict-default", ["predict"]),
    ("predict-folder", ["predict", "photos", "--json", "out/p.json", "--csv", "out/p.csv", "--no-progress"]),
    ("predict-annotate", ["predict", "photos/a.jpg", "--annotate", "out/ann", "--crops", "out/crops"]),
    ("predict-jsonl-stdout", ["predict", "photos/b.jpg", "--jsonl", "-"]),
    ("predict-missing", ["predict", "nowhere.jpg"]),
    ("predict-usage", ["predict", "--bogus"]),
    ("predict-same-output", ["predict", "photos/a.jpg", "--json", "photos/a.jpg"]),
    ("classify-default", ["classify"]),
    ("classify-json", ["classify", "face.png", "--json", "out/c.json"]),
    ("video", ["video", "clip.mp4", "--jsonl", "out/v.jsonl", "--crops", "out/vcrops", "--crops-every", "10"]),
    ("visualize-saliency", ["visualize", "saliency", "--out", "out/s.png"]),
    ("visualize-layers", ["visualize", "feature-maps", "--list-layers"]),
    ("data-info", ["data", "info", "tiny.csv"]),
    ("data-pack", ["data", "pack", "tiny.csv", "out/tiny.npz"]),
    ("ensemble", ["ensemble", "fer-e", "fer-mix", "--name", "ens", "--out", "out/ens", "--data", "tiny.csv"]),
    ("export", ["export", "seed.safetensors", "--name", "s", "--out", "out/exported"]),
    ("calibrate-too-few", ["calibrate", "seed.safetensors", "--data", "tiny.csv"]),
    ("evaluate", ["evaluate", "--data", "tiny.csv", "--split", "PublicTest", "--json", "out/e.json"]),
    ("visualize-usage", ["visualize"]),
]

_TIMES = re.compile(r"\d+(?:\.\d+)?(\s*)(ms|s|images/s|frames/s|faces/s|fps)\b")


def _make_inputs(work: Path) -> None:
    """The generated inputs, the same bytes on every run (fixed seed; the clip from the bundled photo)."""
    import cv2
    import numpy as np

    from ferkit import __file__ as package_file

    assets = Path(package_file).parent / "assets"
    (work / "photos").mkdir()
    (work / "out").mkdir()
    shutil.copy(assets / "sample_photo.jpg", work / "photos" / "a.jpg")
    shutil.copy(assets / "sample_photo.jpg", work / "photos" / "b.jpg")
    (work / "photos" / "broken.jpg").write_text("not a picture\n")
    shutil.copy(assets / "sample_face.png", work / "face.png")
    shutil.copy(Path(package_file).parent / "weights" / "seed.safetensors", work / "seed.safetensors")

    photo = cv2.imread(str(assets / "sample_photo.jpg"))
    writer = cv2.VideoWriter(str(work / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (256, 256))
    for i in range(20):  # 2 s: the photo drifting right by 2 px a frame
        frame = cv2.resize(np.roll(photo, 2 * i, axis=1), (256, 256), interpolation=cv2.INTER_AREA)
        writer.write(frame)
    writer.release()

    rng = np.random.default_rng(0)
    face = cv2.resize(cv2.imread(str(assets / "sample_face.png"), cv2.IMREAD_GRAYSCALE), (48, 48))
    rows = ["emotion,pixels,Usage"]
    for i in range(70):
        pixels = np.clip(face.astype(int) + rng.integers(-20, 21, face.shape), 0, 255).astype(np.uint8)
        usage = "PublicTest" if i % 2 else "Training"
        rows.append(f"{i % 7},{' '.join(map(str, pixels.ravel()))},{usage}")
    (work / "tiny.csv").write_text("\n".join(rows) + "\n")


def _file_lines(work: Path) -> list[str]:
    lines = []
    for path in sorted(p for p in (work / "out").rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".onnx":  # torch's exporter stores each node's Python stack trace: the exporting file's path
            import onnx

            model = onnx.load_from_string(data)
            for node in model.graph.node:
                keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
                del node.metadata_props[:]
                node.metadata_props.extend(keep)
            digest = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()[:16]
            lines.append(f"{path.relative_to(work)}  sha256 {digest} (without the exporter's stack traces)")
            continue
        if path.suffix == ".npz":  # a zip: its bytes carry the time it was written; record the arrays instead
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                lines.append(f"{path.relative_to(work)}  arrays:")
                lines += [f"    {k} {arrays[k].dtype} {arrays[k].shape} sha256 "
                          f"{hashlib.sha256(np.ascontiguousarray(arrays[k]).tobytes()).hexdigest()[:16]}"
                          for k in sorted(arrays.files)]
            continue
        if path.suffix in {".json", ".jsonl", ".csv", ".txt"} and len(data) < 20000:  # shown whole
            lines.append(f"{path.relative_to(work)}  {len(data)} bytes")
            lines += ["    " + line for line in data.decode().splitlines()]
        else:
            lines.append(f"{path.relative_to(work)}  {len(data)} bytes  sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    return lines


def _run(args: list[str], work: Path, columns: int, package_dir: str) -> str:
    code = "import sys; from ferkit.cli import main; sys.argv[0] = 'ferkit'; main(sys.argv[1:])"
    env = dict(os.environ, COLUMNS=str(columns), LINES="50", NO_COLOR="1", TERM="dumb")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    text = "\n".join([f"$ ferkit {' '.join(args)}   (COLUMNS={columns})", f"exit {proc.returncode}",
                      "--- stdout", proc.stdout.rstrip(), "--- stderr", proc.stderr.rstrip()])
    return text.replace(package_dir, "<ferkit>").replace(str(work), "<work>")


def snapshot(out: Path) -> None:
    """Run every command; write ``out/<name>.txt`` for each."""
    import ferkit

    package_dir = str(Path(ferkit.__file__).parent)
    out.mkdir(parents=True, exist_ok=True)
    revision = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=package_dir, capture_output=True,
                              text=True).stdout.strip() or "not a git checkout"
    (out / "SOURCE").write_text(f"{package_dir} ({revision})\n")  # which code ran (the records mask this folder)
    for columns in (80, 120):
        for command in [""] + COMMANDS:
            args = command.split() + ["--help"]
            name = f"help-{command.replace(' ', '-') or 'ferkit'}-{columns}"
            with tempfile.TemporaryDirectory() as tmp:
                (out / f"{name}.txt").write_text(_run(args, Path(tmp), columns, package_dir) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs"
        inputs.mkdir()
        _make_inputs(inputs)  # once; each run gets a fresh copy (a run may write beside its inputs)
        for name, args in RUNS:
            _record_run(out, name, args, inputs, package_dir)
            print(f"{name}: done", file=sys.stderr)


def _record_run(out: Path, name: str, args: list[str], inputs: Path, package_dir: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(inputs, work)
        text = _TIMES.sub(r"<t>\1\2", _run(args, work, 100, package_dir))
        text += "\n" + "\n".join(["--- files", *_file_lines(work)]) + "\n"
        for onnx_file in (work / "out").rglob("*.onnx"):  # its raw sha256, printed and in manifests: see above
            raw = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
            text = text.replace(raw, f"<sha256 of {onnx_file.name}>")
        (out / f"run-{name}.txt").write_text(text)


def diff(old: Path, new: Path) -> int:
    """Print a unified diff of every snapshot file that differs or is missing; 0 when all are identical."""
    sources = [(d / "SOURCE").read_text().strip() if (d / "SOURCE").exists() else "unknown" for d in (old, new)]
    print(f"old: {sources[0]}\nnew: {sources[1]}")
    if sources[0].split(" (")[0] == sources[1].split(" (")[0]:
        print("note: both ran the package in the same folder: this compares two runs of one source, not two sources")
    names = sorted({p.name for p in old.glob("*.txt")} | {p.name for p in new.glob("*.txt")})
    changed = 0
    for name in names:
        a = (old / name).read_text().splitlines() if (old / name).exists() else ["<missing>"]
        b = (new / name).read_text().splitlines() if (new / name).exists() else ["<missing>"]
        if a != b:
            changed += 1
            sys.stdout.writelines(line + "\n" for line in difflib.unified_diff(a, b, f"old/{name}", f"new/{name}",
                                                                                 lineterm=""))
    print(f"{len(names)} snapshot files compared, {changed} differ")
    return 1 if changed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="SNAPSHOT_DIR, or OLD_DIR NEW_DIR with --diff")
    parser.add_argument("--diff", action="store_true", help="compare two snapshots instead of taking one")
    args = parser.parse_args()
    if args.diff:
        if len(args.dirs) != 2:
            parser.error("--diff takes OLD_DIR NEW_DIR")
        sys.exit(diff(*args.dirs))
    if len(args.dirs) != 1:
        parser.error("give one SNAPSHOT_DIR")
    snapshot(args.dirs[0])


if __name__ == "__main__":
    main()
