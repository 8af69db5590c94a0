"""Measure scenario expansion (large-chat.yaml) and the canary leak scan on synthetic data.

Run: .venv/bin/python benchmarks/scenario_expansion_and_leak_scan.py [--scan-mib N]
Prints one JSON object: expansion time and peak traced memory for 100,000 messages, and scan
throughput for the needles of every canary planted in daily-life.yaml.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
import tracemalloc
from pathlib import Path

from harness.canaries import plant_canaries, scan_for
from harness.scenario import load_scenario, resolve

ROOT = Path(__file__).resolve().parents[1]
NOW_MS = 1_740_830_400_000


def measure_expansion() -> dict[str, float]:
    started = time.perf_counter()
    scenario = load_scenario(ROOT / "fixtures" / "scenarios" / "large-chat.yaml")
    loaded = time.perf_counter()
    tracemalloc.start()
    count = sum(1 for _ in resolve(scenario, NOW_MS)["messages"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    untraced_start = time.perf_counter()
    sum(1 for _ in resolve(scenario, NOW_MS)["messages"])
    finished = time.perf_counter()
    return {
        "messages": count,
        "load_seconds": round(loaded - started, 3),
        "expand_seconds": round(finished - untraced_start, 3),
        "expand_peak_traced_mib": round(peak / 2**20, 2),
    }


def measure_scan(mebibytes: int) -> dict[str, float]:
    rng = random.Random(1)
    scenario = load_scenario(ROOT / "fixtures" / "scenarios" / "daily-life.yaml")
    _, canaries = plant_canaries(scenario, rng)
    needles = canaries.needles()
    raw = rng.randbytes(mebibytes * 2**20)
    compressed = gzip.compress(rng.randbytes(2**20))
    haystack = raw + compressed
    started = time.perf_counter()
    matches = scan_for(haystack, needles)
    elapsed = time.perf_counter() - started
    return {
        "canaries": len(canaries),
        "distinct_needles": len(set(needles.values())),
        "haystack_mib": round(len(haystack) / 2**20, 2),
        "scan_seconds": round(elapsed, 3),
        "mib_per_second": round(len(haystack) / 2**20 / elapsed, 1),
        "matches": len(matches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan-mib", type=int, default=16, help="random haystack size in MiB (default 16)")
    arguments = parser.parse_args()
    print(json.dumps({"expansion": measure_expansion(), "scan": measure_scan(arguments.scan_mib)}, indent=2))


if __name__ == "__main__":
    main()
