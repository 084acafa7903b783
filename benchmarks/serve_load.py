"""Load test of `ferkit serve` on loopback: C concurrent clients POST a photo for D seconds.

Each configuration starts a fresh `ferkit serve` (default flags but --workers) in its own process group,
warms it up, then runs C clients (asyncio + httpx2, one keep-alive connection each) that POST the bundled
sample photo (512x512 JPEG, 66 KB, one face) to /v1/predict as multipart, back to back, for D seconds.
Reported per configuration: requests/s, latency p50/p90/p99/max, every non-200 answer or transport
error (the target is zero), and the CPU cores the server's processes and the load generator kept busy.
The load generator runs on the same machine, so it takes CPU from the server: the figures are a lower
bound for a server with the machine to itself.

Usage: python benchmarks/serve_load.py [--clients 1 20] [--seconds 30] [--workers 1 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def start_server(port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "ferkit.cli", "serve", "--port", str(port), "--workers",
                             str(workers), "--log-level", "warning"], start_new_session=True)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("ferkit serve did not come up")


async def load(url: str, photo: bytes, clients: int, seconds: float) -> dict:
    import httpx2

    latencies, failures = [], {}
    stop = time.perf_counter() + seconds

    async def client():
        async with httpx2.AsyncClient(timeout=60) as http:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    r = await http.post(url, files={"file": ("photo.jpg", photo, "image/jpeg")})
                    ok = r.status_code == 200 and len(r.json()["faces"]) == 1
                    key = "ok" if ok else f"HTTP {r.status_code}"
                except Exception as exc:  # noqa: BLE001 -- every failure is counted and reported
                    key = type(exc).__name__
                if key == "ok":
                    latencies.append(time.perf_counter() - t)
                else:
                    failures[key] = failures.get(key, 0) + 1

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    client_cores = (time.process_time() - cpu) / wall
    ms = np.array(latencies) * 1000
    return {"clients": clients, "seconds": round(wall, 2), "requests": len(latencies),
            "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1),
            "errors": sum(failures.values()), "error_kinds": failures, "client_cores": round(client_cores, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[20])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.txt")
    args = parser.parse_args()
    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    photo = SAMPLE_PHOTO.read_bytes()
    lines = [f"# ferkit serve load test: {'/'.join(map(str, args.clients))} concurrent clients x {args.seconds:g} s, POST /v1/predict "
             f"(multipart, {SAMPLE_PHOTO.name} {len(photo) // 1024} KB, 1 face), loopback",
             f"# machine: {cpu_name()}, {os.cpu_count()} cores, "
             f"python {platform.python_version()}; load generator on the same machine",
             f"# command: python benchmarks/serve_load.py --clients {' '.join(map(str, args.clients))} --seconds {args.seconds:g} "
             f"--workers {' '.join(map(str, args.workers))}"]
    results = []
    for workers in args.workers:
        proc = start_server(args.port, workers)
        try:
            url = f"http://127.0.0.1:{args.port}/v1/predict"
            asyncio.run(load(url, photo, 2, 2))  # warm-up: every worker has loaded and run the model
            for clients in args.clients:
                cpu, t = group_cpu_s(proc.pid), time.perf_counter()
                r = {"workers": workers, **asyncio.run(load(url, photo, clients, args.seconds))}
                r["server_cores"] = round((group_cpu_s(proc.pid) - cpu) / (time.perf_counter() - t), 2)
                results.append(r)
                lines.append(f"workers {workers}, clients {clients}: {r['requests']} requests in {r['seconds']} s = "
                             f"{r['requests_per_s']} req/s; latency p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, "
                             f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms; errors {r['errors']} "
                             f"{r['error_kinds'] or ''}; CPU cores busy: server {r['server_cores']}, "
                             f"load generator {r['client_cores']}")
                print(lines[-1], flush=True)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    lines.append("# json: " + json.dumps(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
