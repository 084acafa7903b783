"""Which precision pays for the default classifier on this CPU: fp32 (fer-real), fp16 compute (the same graph
converted by onnxruntime's float16 tool, inputs and outputs kept float32) and int8 (fer-real-int8), side by side in
one run on one onnxruntime thread: ms per face one face per call (median of 5 x 100 calls) and faces/s with 256
faces per call. fp16 is converted on the fly, not shipped.

    python benchmarks/precision.py | tee benchmarks/results/precision.txt
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from ferkit.runtime.onnx_io import session_options
    from ferkit.weights import shipped_path
    from speed import cpu_flags, cpu_model

    fp16 = Path(tempfile.mkdtemp()) / "fer-real-fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(shipped_path("fer-real", "onnx"))), keep_io_types=True), str(fp16))
    paths = {"fp32": shipped_path("fer-real", "onnx"), "fp16": fp16, "int8": shipped_path("fer-real-int8", "onnx")}
    sessions = {k: ort.InferenceSession(str(p), session_options(1), providers=["CPUExecutionProvider"])
                for k, p in paths.items()}
    x = np.random.default_rng(0).standard_normal((256, 1, 48, 48)).astype(np.float32)
    single = {k: [] for k in sessions}
    batched = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(None, {"input": x})
    for _ in range(5):  # interleaved rounds
        for k, s in sessions.items():
            t = time.perf_counter()
            for i in range(100):
                s.run(None, {"input": x[i:i + 1]})
            single[k].append((time.perf_counter() - t) * 10)
            t = time.perf_counter()
            s.run(None, {"input": x})
            batched[k].append(len(x) / (time.perf_counter() - t))
    print(f"# {cpu_model()}, CPU flags {cpu_flags()}, onnxruntime {ort.__version__}, 1 thread")
    print(f"{'precision':10s} {'ms/face (1 per call)':>22s} {'faces/s (256 per call)':>24s} {'MB':>6s}")
    for k in sessions:
        print(f"{k:10s} {np.median(single[k]):22.2f} {np.median(batched[k]):24.0f} {paths[k].stat().st_size / 1e6:6.1f}")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
