"""Photos per minute for a folder of photos, end to end (read, detect, crop, classify), as `ferkit predict`
runs it. The folder's photos are cycled to make ``--n`` inputs (default 1,000).
Usage: python benchmarks/folder_throughput.py ../shared/data/ckplus_peak/images [--n 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path

from ferkit.core.images import find_images
from ferkit.pipeline.recognize import Recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    files = find_images([args.folder])
    paths = list(itertools.islice(itertools.cycle(files), args.n))
    rec = Recognizer(threads=args.threads)
    start = time.perf_counter()
    results = list(rec.predict_paths(paths))
    seconds = time.perf_counter() - start
    faces = sum(len(r.faces) for r in results)
    errors = sum(r.error is not None for r in results)
    print(f"# {platform.processor() or platform.machine()}, {args.threads} onnxruntime thread(s), "
          f"{len(files)} distinct photos cycled to {len(paths)}")
    print(f"{len(paths)} photos, {faces} faces, {errors} errors in {seconds:.1f} s: "
          f"{len(paths) / seconds * 60:.0f} photos/min ({len(paths) / seconds:.1f} photos/s)")


if __name__ == "__main__":
    main()
