"""Time to load FER2013: first parse of the CSV (fresh cache) and a second, cached load.

Usage: python benchmarks/data_load.py [PATH]   (default: ../shared/data/fer2013/fer2013.csv.gz)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/fer2013/fer2013.csv.gz"
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FERKIT_CACHE"] = cache
        from ferkit.data.fer2013 import load_fer2013

        start = time.perf_counter()
        data = load_fer2013(path)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = load_fer2013(path)
        warm = time.perf_counter() - start
    assert len(data) == len(again)
    print(f"{path}: {len(data)} rows; first load (parse + write cache) {cold:.2f} s; cached load {warm:.2f} s")


if __name__ == "__main__":
    main()
