"""How well ``predict --group-people`` groups faces into persons (ferkit.identity), by pairwise precision and recall
(of the pairs of faces put together, the share that are one person; of the pairs that are one person, the share
put together), on the two sets here where identity is known:

- CK+ peak frames (70: the 60 peak frames and the 10 contempt frames; the subject id opens each file name, 59
  subjects, 11 pairs of one person): hard: one lab, one light, grey, extreme expressions;
- augmented views of RAF-DB faces (``--views`` views each of ``--faces`` photos spread over the folder: the photo,
  its mirror image, darker, a tighter shifted crop, JPEG quality 30); a view's identity is its photo (RAF-DB may
  hold one celebrity in two photos: such a pair counts against precision here).

Every threshold in ``--thresholds`` is reported; the shipped one is ferkit.identity.SAME_PERSON, chosen on CK+ alone
by the rule "the highest recall with precision >= 75%"; the RAF-DB views measure it apart.
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

from ferkit.detect import create_detector  # noqa: E402
from ferkit.identity import SAME_PERSON, IdentityEncoder, crops, group, pairwise_scores  # noqa: E402
from ferkit.images import find_images, read_image  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckplus", type=Path, required=True)
    ap.add_argument("--rafdb", type=Path, required=True)
    ap.add_argument("--faces", type=int, default=60)
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6])
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
    ck_feats = enc.normalise(enc.features(np.stack(cut)))
    files = find_images([str(args.rafdb)])
    picked = files[:: max(1, len(files) // args.faces)][: args.faces]
    cut, vids = [], []
    for k, p in enumerate(picked):
        for v in views(cv2.copyMakeBorder(read_image(p), 50, 50, 50, 50, cv2.BORDER_REPLICATE)):
            face = largest(v, det)
            if face is not None:
                cut.append(crops(v, [face])[0])
                vids.append(k)
    raf_feats = enc.normalise(enc.features(np.stack(cut)))
    report = {"cpu": cpu_flags(), "same_person": SAME_PERSON,
              "ckplus": {"faces": len(ids), "subjects": len(set(ids)), "scores": scores(ck_feats, np.array(ids),
                                                                                          args.thresholds)},
              "rafdb_views": {"faces": len(vids), "photos": len(set(vids)),
                              "scores": scores(raf_feats, np.array(vids), args.thresholds)}}
    lines = [f"# grouping faces into persons (ferkit.identity: FaceRes pooled feature, centred, average linkage); "
             f"CPU flags {report['cpu']}; shipped threshold {SAME_PERSON}"]
    for name in ("ckplus", "rafdb_views"):
        r = report[name]
        lines.append(f"{name}: {r['faces']} faces of {r.get('subjects', r.get('photos'))} persons")
        for t, s in r["scores"].items():
            mark = " <- shipped" if abs(float(t) - SAME_PERSON) < 1e-9 else ""
            lines.append(f"  threshold {t}: precision {s['precision'] * 100:5.1f}%  recall {s['recall'] * 100:5.1f}%  "
                         f"({s['grouped_pairs']} pairs grouped, {s['same_person_pairs']} of one person){mark}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
