"""How well ``predict --group-people`` groups faces into persons (ferkit.runtime.identity), by pairwise precision and recall
(of the pairs of faces put together, the share that are one person; of the pairs that are one person, the share
put together), on the two sets here where identity is known:

- CK+ peak frames (70: the 60 peak frames and the 10 contempt frames; the subject id opens each file name, 59
  subjects, 11 pairs of one person): hard: one lab, one light, grey, extreme expressions;
- CK+'s 11 subjects with two frames, each frame with its mirror image and a darker copy (66 views), drawn 2-3
  subjects at a time;
- augmented views of RAF-DB faces (``--views`` views each of ``--faces`` photos spread over the folder: the photo,
  its mirror image, darker, a tighter shifted crop, JPEG quality 30); a view's identity is its photo (RAF-DB may
  hold one celebrity in two photos: such a pair counts against precision here).

Two regimes each: all faces at once (many people), and 200 drawn "events" of 2-3 persons (few people: what a
user's photo folder usually is). Every threshold in ``--thresholds`` and every weight of the reference mean in
``--priors`` is reported; the shipped pair (ferkit.runtime.identity.SAME_PERSON, PRIOR_FACES) was chosen on the two CK+ sets
alone (the highest mean pairwise F1); the RAF-DB sets measure it apart.
Usage: python benchmarks/grouping.py --ckplus D/ckplus_peak --rafdb D/rafdb [--faces 60] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_models import cpu_flags  # noqa: E402

from ferkit.runtime.detect import create_detector  # noqa: E402
from ferkit.runtime.identity import PRIOR_FACES, SAME_PERSON, IdentityEncoder, crops, group, pairwise_scores  # noqa: E402
from ferkit.core.images import find_images, read_image  # noqa: E402


def largest(rgb, det):
    found = det.detect(rgb)
    return max(found, key=lambda f: f.box[2] * f.box[3]) if found else None


def views(rgb: np.ndarray) -> list[np.ndarray]:
    h, w = rgb.shape[:2]
    tight = cv2.resize(rgb[int(0.06 * h):int(0.96 * h), int(0.08 * w):int(0.98 * w)], (w, h))
    ok, jpeg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
    return [rgb, np.ascontiguousarray(rgb[:, ::-1]), (rgb * 0.6).astype(np.uint8), tight,
            cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1].copy()]


def scores(feats, ids, thresholds) -> dict:
    return {f"{t:.2f}": pairwise_scores(ids, group(feats, t)) for t in thresholds}


def few_people(enc, raw, ids, thresholds, prior, draws=200, seed=0) -> dict:
    """Pairwise precision and recall pooled over ``draws`` small events: 2 or 3 persons drawn at random, all their
    faces (``raw`` features, one identity per face in ``ids``), grouped on their own."""
    rng = np.random.default_rng(seed)
    people = np.unique(ids)
    totals = {t: np.zeros(3) for t in thresholds}  # pairs one person and together, together, one person
    for _ in range(draws):
        chosen = rng.choice(people, size=int(rng.integers(2, 4)), replace=False)
        pick = np.isin(ids, chosen)
        feats = enc.normalise(raw[pick], prior=prior)
        for t in thresholds:
            r = pairwise_scores(ids[pick], group(feats, t))
            tp = r["precision"] * r["grouped_pairs"]
            totals[t] += [tp, r["grouped_pairs"], r["same_person_pairs"]]
    return {f"{t:.2f}": {"precision": v[0] / v[1] if v[1] else 1.0, "recall": v[0] / v[2] if v[2] else 1.0,
                         "grouped_pairs": int(v[1]), "same_person_pairs": int(v[2])} for t, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckplus", type=Path, required=True)
    ap.add_argument("--rafdb", type=Path, required=True)
    ap.add_argument("--faces", type=int, default=60)
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    ap.add_argument("--priors", type=float, nargs="*", default=[PRIOR_FACES],
                    help="weights of the reference mean to compare (inf: the reference alone)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    det, enc = create_detector(threads=1), IdentityEncoder()
    ck = sorted((args.ckplus / "images").glob("*.png")) + sorted((args.ckplus / "contempt_images").glob("*.png"))
    cut, ids = [], []
    for p in ck:
        rgb = read_image(p)
        face = largest(rgb, det)
        if face is not None:
            cut.append(crops(rgb, [face])[0])
            ids.append(p.name.split("_")[0])
    ck_raw, ck_ids = enc.features(np.stack(cut)), np.array(ids)
    # CK+ "events": its subjects with two frames, each frame with its mirror image and a darker copy (few people)
    ck_views, ck_view_ids = [], []
    for p in ck:
        if sum(i == p.name.split("_")[0] for i in ids) < 2:
            continue
        rgb = read_image(p)
        for v in views(rgb)[:3]:
            face = largest(v, det)
            if face is not None:
                ck_views.append(crops(v, [face])[0])
                ck_view_ids.append(p.name.split("_")[0])
    ck_views_raw = enc.features(np.stack(ck_views))
    files = find_images([str(args.rafdb)])
    picked = files[:: max(1, len(files) // args.faces)][: args.faces]
    cut, vids = [], []
    for k, p in enumerate(picked):
        for v in views(cv2.copyMakeBorder(read_image(p), 50, 50, 50, 50, cv2.BORDER_REPLICATE)):
            face = largest(v, det)
            if face is not None:
                cut.append(crops(v, [face])[0])
                vids.append(k)
    raf_raw, raf_ids = enc.features(np.stack(cut)), np.array(vids)
    ck_view_ids = np.array(ck_view_ids)
    report = {"cpu": cpu_flags(), "same_person": SAME_PERSON, "prior_faces": PRIOR_FACES, "sets": {}}
    lines = [f"# grouping faces into persons (ferkit.runtime.identity: FaceRes pooled feature, centred with the reference "
             f"mean counted as PRIOR faces, average linkage); CPU flags {report['cpu']}; shipped: threshold "
             f"{SAME_PERSON}, PRIOR {PRIOR_FACES:g}"]
    for prior in args.priors:
        sets = {"ckplus (70 frames, 59 subjects)": scores(enc.normalise(ck_raw, prior=prior), ck_ids, args.thresholds),
                f"ckplus few people (2-3 of its 11 two-frame subjects, {len(ck_view_ids)} views)":
                    few_people(enc, ck_views_raw, ck_view_ids, args.thresholds, prior),
                f"rafdb views ({len(raf_ids)} views of {len(set(vids))} photos)":
                    scores(enc.normalise(raf_raw, prior=prior), raf_ids, args.thresholds),
                "rafdb few people (2-3 photos' views)": few_people(enc, raf_raw, raf_ids, args.thresholds, prior)}
        report["sets"][f"{prior:g}"] = sets
        for name, table in sets.items():
            lines.append(f"PRIOR {prior:g}, {name}:")
            for t, s in table.items():
                mark = " <- shipped" if abs(float(t) - SAME_PERSON) < 1e-9 and prior == PRIOR_FACES else ""
                f1 = 2 * s["precision"] * s["recall"] / max(s["precision"] + s["recall"], 1e-9)
                lines.append(f"  threshold {t}: precision {s['precision'] * 100:5.1f}%  recall "
                             f"{s['recall'] * 100:5.1f}%  F1 {f1:.2f}  ({s['grouped_pairs']} pairs grouped, "
                             f"{s['same_person_pairs']} of one person){mark}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
