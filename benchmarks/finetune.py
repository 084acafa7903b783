"""What fine-tuning on a few of your own photos buys: accuracy before vs after, subject-wise on CK+ and by photo
on ExpW dev, with the time it takes on this machine.

- CK+ (60 peak frames, contempt excluded; the subject is the file name's ``S###`` prefix): 5 leave-subjects-out
  folds. For each fold and each k in ``--shots`` (default 1, 3, 5), k photos per emotion are drawn from the
  *other* subjects, the base model's last layer is fine-tuned on them (``ferkit finetune``'s head mode, no
  held-out part: a k-shot set is too small to split) and the fold's own subjects are classified. Every photo is
  tested once per seed; the accuracy is the mean over ``--seeds`` draws.
- ExpW dev (1,896 labelled faces in 1,806 web photos): the photos are split in half (by photo, so faces of one
  photo stay together); the model is fine-tuned on the found faces of one half (20% of them held out for early
  stopping, as ``ferkit finetune`` does) and tested end to end on the other (a labelled face not found counts as
  wrong), for ``--seeds`` splits; ``--all-layers`` adds one run of the ``all`` mode.

    python benchmarks/finetune.py --ckplus ../shared/data/ckplus_peak --expw ../shared/data/expw_dev \\
        --json docs/results/finetune.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np

from compare_models import cpu_flags
from ferkit.core.labels import EMOTIONS


def predict(net, crops: np.ndarray) -> np.ndarray:
    from ferkit.runtime import preprocess
    from ferkit.core.inference import predict_proba

    meta = net.ferkit_meta
    if len(crops) == 0:
        return np.zeros((0, len(EMOTIONS)), np.float32)
    return predict_proba(net, preprocess.apply(crops, preprocess.of(meta)), meta["normalization"]["mean"],
                         meta["normalization"]["std"], tta=bool(meta.get("tta", False)),
                         temperature=float(meta.get("temperature", 1.0)))


def ckplus(root: Path, base: str | None, shots: list[int], seeds: int) -> dict:
    from ferkit.adapt import collect_faces, tune
    from ferkit.models import load_model

    faces = collect_faces(root)
    subject = np.array([re.match(r"(S\d+)", Path(p).name).group(1) for p in faces.paths])
    subjects = np.unique(subject)
    n_total = len(faces) + len(faces.skipped)
    base_net = load_model(base)
    before = predict(base_net, faces.crops).argmax(1)
    report = {"photos": n_total, "found": len(faces), "subjects": int(len(subjects)), "folds": 5,
              "before": float((before == faces.labels).sum() / n_total), "after": {}, "seconds_per_finetune": {}}
    print(f"CK+: {n_total} photos, {len(faces)} faces found, {len(subjects)} subjects; "
          f"base model {report['before'] * 100:.1f}%")
    for k in shots:
        accs, secs = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            folds = np.array_split(rng.permutation(subjects), 5)
            right = 0
            for fold in folds:
                test = np.flatnonzero(np.isin(subject, fold))
                pool = np.setdiff1d(np.arange(len(faces)), test)
                picked = np.concatenate([rng.permutation(pool[faces.labels[pool] == c])[:k]
                                         for c in np.unique(faces.labels)])
                net = load_model(base)
                start = time.perf_counter()
                tune(net, faces.crops, faces.labels, np.sort(picked), np.array([], np.int64), layers="head", seed=seed)
                secs.append(time.perf_counter() - start)
                right += int((predict(net, faces.crops[test]).argmax(1) == faces.labels[test]).sum())
            accs.append(right / n_total)
        report["after"][str(k)] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "per_seed": accs}
        report["seconds_per_finetune"][str(k)] = float(np.median(secs))
        print(f"  k = {k} photo(s) per emotion from other subjects: {np.mean(accs) * 100:.1f}% "
              f"(+-{np.std(accs) * 100:.1f} over {seeds} draws), {np.median(secs):.2f} s per fine-tune")
    return report


def expw(root: Path, base: str | None, seeds: int, all_layers: bool) -> dict:
    from ferkit.adapt import collect_faces, split_held_out, tune
    from ferkit.models import load_model

    start = time.perf_counter()
    faces = collect_faces(root, progress=True)
    detect_s = time.perf_counter() - start
    photos = sorted(set(faces.paths) | {p for p, _ in faces.skipped})
    index = {p: i for i, p in enumerate(photos)}
    photo_of_face = np.array([index[p] for p in faces.paths])
    missed_photo = np.array([index[p] for p, _ in faces.skipped], dtype=np.int64)
    base_net = load_model(base)
    base_right = predict(base_net, faces.crops).argmax(1) == faces.labels
    report = {"faces": len(faces) + len(faces.skipped), "found": len(faces), "photos": len(photos),
              "detect_seconds": detect_s, "runs": []}
    print(f"ExpW dev: {report['faces']} labelled faces, {len(faces)} found, in {len(photos)} photos "
          f"(detected in {detect_s:.0f} s)")
    modes = [("head", s) for s in range(seeds)] + ([("all", 0)] if all_layers else [])
    for layers, seed in modes:
        rng = np.random.default_rng(100 + seed)
        test_photos = rng.permutation(len(photos))[: len(photos) // 2]
        test = np.isin(photo_of_face, test_photos)
        n_test = int(test.sum() + np.isin(missed_photo, test_photos).sum())  # not found: counted wrong
        pool = np.flatnonzero(~test)
        tr, held, _ = split_held_out(faces.labels[pool], 0.2, seed)
        net = load_model(base)
        t0 = time.perf_counter()
        result = tune(net, faces.crops, faces.labels, pool[tr], pool[held], layers=layers, seed=seed)
        seconds = time.perf_counter() - t0
        after = predict(net, faces.crops[test]).argmax(1) == faces.labels[test]
        recall = {EMOTIONS[c]: float(after[faces.labels[test] == c].mean()) for c in range(len(EMOTIONS))}
        run = {"layers": layers, "seed": seed, "trained_on": int(len(tr)), "held_out": int(len(held)),
               "test_faces": n_test, "before": float(base_right[test].sum() / n_test),
               "after": float(after.sum() / n_test), "best_epoch": result["best_epoch"],
               "epochs_run": result["epochs_run"], "seconds": seconds, "recall_after": recall}
        report["runs"].append(run)
        print(f"  {layers:4s} split {seed}: trained on {len(tr)} faces ({len(held)} held out), tested on {n_test}: "
              f"{run['before'] * 100:.1f}% -> {run['after'] * 100:.1f}% end to end "
              f"(best epoch {run['best_epoch']}, {seconds:.1f} s)")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=None, help="model to fine-tune (default: the shipped default)")
    ap.add_argument("--ckplus", type=Path)
    ap.add_argument("--expw", type=Path)
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--all-layers", action="store_true", help="also fine-tune every layer once on ExpW dev")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    from ferkit.weights import DEFAULT_MODEL

    torch.set_num_threads(1)
    report = {"base": args.base or DEFAULT_MODEL, "cpu": cpu_flags(), "threads": 1,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s)"}
    if args.ckplus:
        report["ckplus"] = ckplus(args.ckplus, args.base, args.shots, args.seeds)
    if args.expw:
        report["expw_dev"] = expw(args.expw, args.base, args.seeds, args.all_layers)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
