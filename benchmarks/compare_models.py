"""Several models side by side, in one run, on FER2013 PublicTest, on real photos (ExpW dev, CK+) and on the
validation part of face-crop folders (RAF-DB validation).

Every model decision is judged on both kinds of data at once. Faces in the photo sets are detected, matched
and cropped once (``ferkit.analysis.photos.find_faces``, exactly as ``ferkit predict`` crops them), then every model
classifies the same crops. Each model is a shipped name, a run's ``model.safetensors`` (PyTorch, fp32) or an
``.onnx`` file, optionally labelled ``LABEL=MODEL``; each applies its own declared preprocessing and its own
flip-TTA choice, unless the model ends in ``@tta`` or ``@notta`` (e.g. ``fer-m-tta=fer-m@tta``).

    python benchmarks/compare_models.py --data ../shared/data/fer2013/fer2013.csv.gz \\
        --photos ../shared/data/expw_dev --photos ../shared/data/ckplus_peak \\
        fer-m none=runs/pp-none/model.safetensors eq=runs/pp-equalize_hist/model.safetensors --json out.json

Columns: PublicTest accuracy with FER2013 labels (and with the FER+ majority where ``fer2013new.csv`` lies
beside the data), then per photo set the end-to-end accuracy (a labelled face not found counts as wrong),
the classifier alone on the faces found, and the lowest per-class recall. ``--per-class`` adds the recall
table of every photo set, with the balanced accuracy over the classes but surprise (ExpW's surprise class is
mostly angry faces: ``../shared/data/expw_dev/README.md``). Photo faces are cropped once per view the models
declare: framing (``box`` or ``align``), input size and channels (48x48 grey, 112x112 RGB; their ModelSpec).

``--crops FOLDER`` (repeatable, e.g. ``../shared/data/rafdb``): the folder's fixed validation part (the 10% that
``ferkit train --data FOLDER`` holds out, ``ferkit.data.sources``) scored three ways: ``crop`` the stored crop itself
as the face (resized to the model's input, as ``ferkit classify`` or ``predict --no-detect`` take it), ``framed`` the
crop re-framed as training framed it (grey padding, detector, the model's framing), and ``e2e`` ``ferkit
predict`` on the crop file (detector on the crop as it is; a face not found counts as wrong). Each model row
also gives ms per face on one core (``Classifier.predict_proba`` on 256 faces, one at a time, median of 3) and
the size of its files in MB.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ferkit.analysis.evaluate import evaluate_model
from ferkit.core.labels import EMOTIONS
from ferkit.weights import DEFAULT_DETECTOR


def emit(lines: list[str], out=None) -> str:
    """Print a benchmark's table and, with ``out`` (a path), write it there too; returns the text."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")
    return text


def cpu_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0]
    except (OSError, IndexError):
        return platform.processor() or "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8") if f in flags.split())


class CropSet:
    """The validation part of a face-crop folder, ready to score three ways (see the module docstring)."""

    def __init__(self, root: Path, max_side: int, detector: str = DEFAULT_DETECTOR):
        from ferkit.analysis.photos import read_photo_set
        from ferkit.data.sources import load_crop_folder

        self.root, self.max_side, self.detector = root, max_side, detector
        val = load_crop_folder(root).faces.usage == "Validation"
        self.faces = [f for f, v in zip(read_photo_set(root), val) if v]
        self.labels = np.array([f.label for f in self.faces])
        self.crop, self.framed, self.e2e = {}, {}, {}
        print(f"{root.name} validation: {len(self.labels)} faces, {int(self._for(('box', 48, False))[2].found.sum())} "
              f"found by predict's detector on the crop", flush=True)

    def _for(self, view: tuple):
        """(the stored crops resized, the validation crops re-framed, predict's faces found on the crop files) for a
        view (framing, size, colour), once each."""
        if view not in self.framed:
            import tempfile

            from ferkit.runtime.crop import whole_face
            from ferkit.core.images import read_image
            from ferkit.analysis.photos import find_faces
            from ferkit.data.sources import load_crop_folder

            framing, size, colour = view
            self.crop[view] = np.stack([whole_face(read_image(f.path), size, colour) for f in self.faces])
            folder = load_crop_folder(self.root, framing=framing, size=size, colour=colour)
            self.framed[view] = folder.faces.images[folder.faces.usage == "Validation"]
            with tempfile.TemporaryDirectory() as tmp:  # the validation files as a photo set, for `predict`'s path
                (Path(tmp) / "labels.csv").write_text("path,emotion\n" + "".join(
                    f"{f.path.resolve()},{EMOTIONS[f.label]}\n" for f in self.faces))
                self.e2e[view] = find_faces(tmp, max_side=self.max_side, framing=framing, detector=self.detector,
                                            size=size, colour=colour)
        return self.crop[view], self.framed[view], self.e2e[view]

    def score(self, model: str, tta, view: tuple) -> dict:
        from ferkit.analysis.evaluate import compute_metrics, load_predictor
        from ferkit.analysis.photos import evaluate_photos

        predict, _ = load_predictor(model, tta=tta)
        crop, framed, e2e = self._for(view)
        return {"crop": compute_metrics(predict(crop), self.labels),
                "framed": compute_metrics(predict(framed), self.labels),
                "e2e": evaluate_photos(e2e, model, tta=tta)}


def view_of(model: str) -> tuple:
    """How ``model`` wants its faces cropped: (framing, input size, colour), from its ModelSpec."""
    from ferkit.analysis.evaluate import model_spec

    spec = model_spec(model)
    return spec.framing, spec.size, spec.colour


def balanced_without(report: dict, drop: str = "surprise") -> float:
    """Mean recall over the classes present except ``drop`` (ExpW dev: its surprise labels are mostly angry faces)."""
    recalls = [v["recall"] for e, v in report["per_class"].items() if e != drop and v["support"]]
    return float(np.mean(recalls)) if recalls else float("nan")


def cost(model: str, tta) -> tuple[float, float]:
    """(ms per face on one core, single-face calls, median of 3 rounds of 64 faces; MB of the model's files)."""
    import onnxruntime  # noqa: F401 - the shipped runtime

    from ferkit.runtime.onnx_io import onnx_for
    from ferkit.runtime.classifier import Classifier
    from ferkit.weights import read_ensemble, is_ensemble, resolve

    try:
        path = onnx_for(model) if str(model).endswith(".safetensors") else resolve(model, "onnx")
    except Exception as exc:  # noqa: BLE001 - a model without an ONNX form is reported, not timed
        print(f"  {model}: not timed ({exc})")
        return float("nan"), float("nan")
    clf = Classifier(str(path), threads=1, tta=tta)
    faces = np.random.default_rng(0).integers(0, 256, (64,) + clf.spec.face_shape, dtype=np.uint8)
    clf.predict_proba(faces[:8])
    rounds = []
    for _ in range(3):
        t0 = time.perf_counter()
        for f in faces:
            clf.predict_proba(f[None])
        rounds.append((time.perf_counter() - t0) / len(faces) * 1000)
    files = [Path(m["model"]) if Path(m["model"]).exists() else resolve(m["model"], "onnx")
             for m in read_ensemble(path)["members"]] if is_ensemble(path) else [Path(path)]
    return float(np.median(rounds)), sum(f.stat().st_size for f in files) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="[LABEL=]MODEL: shipped name, .safetensors or .onnx")
    ap.add_argument("--data", type=Path, help="FER2013 file (PublicTest is scored)")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--photos", type=Path, action="append", default=[], help="photo set folder (repeatable)")
    ap.add_argument("--crops", type=Path, action="append", default=[], help="face-crop folder: its validation "
                    "part is scored (repeatable)")
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, help="face detector of the photo sets and the e2e "
                    "columns (default: ferkit's, %(default)s; centerface: fp32)")
    ap.add_argument("--per-class", action="store_true", help="print per-class recall on every photo set")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from ferkit.data.fer2013 import load_fer2013
    from ferkit.data.ferplus import ferplus_path
    from ferkit.analysis.photos import evaluate_photos, find_faces

    models = [(m.split("=", 1) if "=" in m else (m, m)) for m in args.models]
    data = load_fer2013(args.data) if args.data else None
    has_ferplus = data is not None and ferplus_path(data).exists()
    framings = {label: view_of(model.partition("@")[0]) for label, model in models}
    found_by_framing: dict[tuple, dict] = {}
    for view in sorted(set(framings.values())):
        found_by_framing[view] = {}
        framing, size, colour = view
        for root in args.photos:
            t0 = time.perf_counter()
            fs = found_by_framing[view][root.name] = find_faces(root, max_side=args.max_side, framing=framing,
                                                                detector=args.detector, size=size, colour=colour)
            print(f"{root.name} ({framing}, {size} px{' RGB' if colour else ''}): {int(fs.found.sum())} / "
                  f"{len(fs.labels)} labelled faces found ({time.perf_counter() - t0:.0f} s)", flush=True)
    found_sets = next(iter(found_by_framing.values())) if found_by_framing else {}
    crop_sets = {root.name: CropSet(root, args.max_side, args.detector) for root in args.crops}
    results = {"cpu": cpu_flags(), "machine": platform.machine(), "detector": args.detector, "models": {}}
    for label, model in models:
        row = {"model": model, "framing": framings[label][0], "input": list(framings[label][1:])}
        model, _, view = model.partition("@")
        tta = {"": None, "tta": True, "notta": False}[view]
        if data is not None:
            row[args.split] = evaluate_model(model, data, args.split, tta=tta)
            if has_ferplus:
                row[f"{args.split} (FER+ majority)"] = evaluate_model(model, data, args.split, labels="ferplus-majority",
                                                                      tta=tta)
        for name, fs in found_by_framing[framings[label]].items():
            row[name] = evaluate_photos(fs, model, tta=tta)
            row[name]["balanced_without_surprise"] = balanced_without(row[name])
        for name, cs in crop_sets.items():
            row[f"{name} validation"] = cs.score(model, tta, framings[label])
        row["ms_per_face"], row["mb"] = cost(model, tta)
        results["models"][label] = row
        print(f"  scored {label}", flush=True)

    head = f"{'model':22s}"
    if data is not None:
        head += f"{args.split:>12s}" + (f"{'FER+ maj.':>11s}" if has_ferplus else "")
    for name in found_sets:
        head += f"{name + ' e2e':>16s}{'found-only':>12s}{'min recall':>12s}"
    for name in crop_sets:
        head += f"{name + ' val crop':>16s}{'framed':>9s}{'e2e':>9s}"
    head += f"{'ms/face':>9s}{'MB':>7s}"
    print("\n" + head)
    for label, row in results["models"].items():
        line = f"{label:22s}"
        if data is not None:
            line += f"{row[args.split]['accuracy'] * 100:11.2f}%"
            if has_ferplus:
                line += f"{row[f'{args.split} (FER+ majority)']['accuracy'] * 100:10.2f}%"
        for name in found_sets:
            r = row[name]
            recalls = [r["per_class"][e]["recall"] for e in EMOTIONS if r["per_class"][e]["support"]]
            line += f"{r['accuracy'] * 100:15.2f}%{r['found_accuracy'] * 100:11.2f}%{min(recalls) * 100:11.1f}%"
        for name in crop_sets:
            r = row[f"{name} validation"]
            line += "".join(f"{r[k]['accuracy'] * 100:{15 if k == 'crop' else 8}.2f}%" for k in ("crop", "framed", "e2e"))
        line += f"{row['ms_per_face']:9.2f}{row['mb']:7.1f}"
        print(line)
    print(f"\nECE (15 bins; photos: on the faces found)\n{'model':22s}" + (f"{args.split:>12s}" if data is not None else "")
          + "".join(f"{n:>18s}" for n in found_sets) + "".join(f"{n + ' val':>18s}" for n in crop_sets))
    for label, row in results["models"].items():
        line = f"{label:22s}" + (f"{row[args.split]['ece'] * 100:11.2f}%" if data is not None else "")
        line += "".join(f"{row[n]['ece'] * 100:17.2f}%" for n in found_sets)
        line += "".join(f"{row[n + ' validation']['framed']['ece'] * 100:17.2f}%" for n in crop_sets)
        print(line)
    if args.per_class:
        for name in crop_sets:
            print(f"\n{name} validation: recall per class (framed)")
            print(f"{'model':22s}" + "".join(f"{e[:8]:>9s}" for e in EMOTIONS))
            for label, row in results["models"].items():
                pc = row[f"{name} validation"]["framed"]["per_class"]
                print(f"{label:22s}" + "".join(f"{pc[e]['recall'] * 100:8.1f}%" for e in EMOTIONS))
        for name in found_sets:
            print(f"\n{name}: recall per class (end to end)")
            print(f"{'model':22s}" + "".join(f"{e[:8]:>9s}" for e in EMOTIONS))
            for label, row in results["models"].items():
                pc = row[name]["per_class"]
                print(f"{label:22s}" + "".join(f"{pc[e]['recall'] * 100:8.1f}%" if pc[e]["support"] else f"{'-':>9s}"
                                               for e in EMOTIONS)
                      + f"   balanced w/o surprise {row[name]['balanced_without_surprise'] * 100:.1f}%")
    print(f"\nCPU flags: {results['cpu']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
