"""What Ray costs and buys for photo batches on this machine: photos/s of plain `ferkit predict` (one process,
one inference thread) against `--engine ray` with 1 and 2 workers, on the same photos, in one run; and Ray's
start-up time. The photos of a folder are cycled to ``--n`` inputs (default 2,000).

    python benchmarks/ray_throughput.py ../shared/data/expw_dev/images --n 2000 --json docs/results/ray-throughput.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from compare_models import cpu_flags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import os

    import ray

    from ferkit.batch import init, predict_dataset
    from ferkit.core.images import find_images
    from ferkit.pipeline.recognize import Recognizer

    files = [str(p) for p in find_images([args.folder])]
    paths = list(itertools.islice(itertools.cycle(files), args.n))
    report = {"cpu": cpu_flags(), "cores": os.cpu_count(), "photos": len(paths), "distinct": len(files), "runs": {}}

    start = time.perf_counter()
    results = list(Recognizer(threads=1).predict_paths(paths))
    seconds = time.perf_counter() - start
    faces = sum(len(r.faces) for r in results)
    report["runs"]["plain"] = {"seconds": seconds, "photos_per_s": len(paths) / seconds, "faces": faces}
    print(f"plain ferkit predict (1 process, 1 thread): {len(paths)} photos, {faces} faces in {seconds:.1f} s = "
          f"{len(paths) / seconds:.1f} photos/s")

    report["startup_seconds"] = init(num_cpus=os.cpu_count())
    print(f"Ray start-up (local, {os.cpu_count()} CPUs): {report['startup_seconds']:.1f} s")
    for n in args.workers:
        ds = ray.data.from_items([{"path": p} for p in paths])
        start = time.perf_counter()
        rows = predict_dataset(ds, num_workers=n, batch_size=32).materialize()
        count = sum(len(r["faces"]) for r in rows.iter_rows())
        seconds = time.perf_counter() - start
        report["runs"][f"ray-{n}"] = {"seconds": seconds, "photos_per_s": len(paths) / seconds, "faces": count}
        print(f"Ray Data, {n} worker(s): {len(paths)} photos, {count} faces in {seconds:.1f} s = "
              f"{len(paths) / seconds:.1f} photos/s ({len(paths) / seconds / report['runs']['plain']['photos_per_s']:.2f}x plain)")
    ray.shutdown()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
