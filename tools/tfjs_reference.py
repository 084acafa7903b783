"""Run a TF.js graph model under TensorFlow itself and save a few inputs and outputs: the independent execution
that ``tests/test_faceres.py`` checks the converted PyTorch module against (``tests/data/faceres_fixture.npz``).

Run it once in a throwaway venv with TensorFlow (never a ferkit dependency):

    python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu
    /tmp/tf/bin/python tools/tfjs_reference.py package/models/faceres-deep.json --out tests/data/faceres_fixture.npz
    /tmp/tf/bin/python tools/tfjs_reference.py package/models/mobilefacenet.json --output embeddings \
        --out tests/data/mobilefacenet_fixture.npz

The GraphDef in ``modelTopology`` is parsed with protobuf's JSON reader; each weight ``Const`` gets its tensor from
the ``.bin`` (float32, as the manifest says) and the graph runs in a TF1 session. The inputs: the sample face at
112 and 224 px and a seeded noise image at 112 px, RGB 0..255 (the graph takes raw pixels).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("graph", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--face", type=Path, default=Path(__file__).parent.parent / "src/ferkit/assets/sample_face.png")
    ap.add_argument("--output", help="another graph's output to save instead of FaceRes's pooled and feats "
                                     "(e.g. embeddings for mobilefacenet), at 112 px, for inputs (x - 127.5) / 128")
    args = ap.parse_args()

    import tensorflow as tf
    from google.protobuf import json_format
    from PIL import Image

    model = json.loads(args.graph.read_text())
    topology = model["modelTopology"]
    blob = b"".join((args.graph.parent / p).read_bytes() for g in model["weightsManifest"] for p in g["paths"])
    values, offset = {}, 0
    for g in model["weightsManifest"]:
        for w in g["weights"]:
            assert "quantization" not in w, "quantized weights: not handled here"
            dtype = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            values[w["name"]] = np.frombuffer(blob, dtype, count, offset).reshape(w["shape"])
            offset += count * 4
    graph_def = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": topology["node"], "versions": topology.get("versions", {})}, graph_def,
                          ignore_unknown_fields=True)
    for node in graph_def.node:
        if node.op == "Const" and node.name in values:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name]))
        if node.op == "Placeholder":  # the graph fixes 224x224; any size runs (the module is built per size)
            for dim in node.attr["shape"].shape.dim[1:3]:
                dim.size = -1
    # _FusedMatMul, _FusedConv2D and FusedDepthwiseConv2dNative (TF.js's fused kernels) cannot run in a session:
    # rewrite each as its plain operation + BiasAdd (+ Relu), as TF.js's converter fused them
    plain = {"_FusedMatMul": "MatMul", "_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}
    nodes = []
    for node in graph_def.node:
        if node.op not in plain:
            nodes.append(node)
            continue
        fused = [s.decode() for s in node.attr["fused_ops"].list.s]
        assert fused[0] == "BiasAdd" and set(fused) <= {"BiasAdd", "Relu"}, fused
        op = tf.compat.v1.NodeDef(name=node.name + "/op", op=plain[node.op], input=list(node.input[:2]))
        for key in ("T", "strides", "padding", "dilations", "data_format"):
            if key in node.attr and (key == "T" or node.op != "_FusedMatMul"):
                op.attr[key].CopyFrom(node.attr[key])
        bias = tf.compat.v1.NodeDef(name=node.name + ("/bias" if "Relu" in fused else ""), op="BiasAdd",
                                    input=[op.name, node.input[2]])
        bias.attr["T"].CopyFrom(node.attr["T"])
        nodes += [op, bias]
        if "Relu" in fused:
            relu = tf.compat.v1.NodeDef(name=node.name, op="Relu", input=[bias.name])
            relu.attr["T"].CopyFrom(node.attr["T"])
            nodes.append(relu)
    del graph_def.node[:]
    graph_def.node.extend(nodes)

    face = np.asarray(Image.open(args.face).convert("RGB"))
    rng = np.random.default_rng(0)
    out = {}
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            if args.output:  # any other graph: its one placeholder, one output, at 112 px
                placeholder = next(n.name for n in graph_def.node if n.op == "Placeholder")
                x = np.stack([np.asarray(Image.fromarray(face).resize((112, 112), Image.BILINEAR)),
                              rng.integers(0, 256, (112, 112, 3))]).astype(np.uint8)
                y = sess.run(f"{args.output}:0", {f"{placeholder}:0": (x.astype(np.float32) - 127.5) / 128})
                out.update({"input_112": x, f"{args.output}_112": y.astype(np.float32)})
            for size in (() if args.output else (112, 224)):
                views = [np.asarray(Image.fromarray(face).resize((size, size), Image.BILINEAR))]
                if size == 112:  # one noise image too: every channel and pixel position matters
                    views.append(rng.integers(0, 256, (size, size, 3)))
                x = np.stack(views).astype(np.uint8)
                pooled, feats = sess.run(["global_pooling/Mean:0", "feats/Relu:0"], {"input_1:0": x.astype(np.float32)})
                out.update({f"input_{size}": x, f"pooled_{size}": pooled.astype(np.float32),
                            f"feats_{size}": feats.astype(np.float32)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, tensorflow=np.array(tf.__version__), **out)
    print(f"wrote {args.out} (TensorFlow {tf.__version__}):", {k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main()
