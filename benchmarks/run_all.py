"""Run every benchmark script in this directory (`make bench`).

A benchmark script is a file named ``*_vs_*.py`` or ``bench_*.py`` next to this one with a
``main()`` entry point; each runs as its own process with this interpreter, one after another,
so their timings do not disturb each other.
Exit status is non-zero when any script fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmark_scripts() -> list[Path]:
    scripts = {*HERE.glob("*_vs_*.py"), *HERE.glob("bench_*.py")}
    return sorted(scripts)


def main() -> int:
    failed = []
    for script in benchmark_scripts():
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, str(script)])
        print(f"== {script.name}: exit {status} after {time.perf_counter() - started:.0f} s", flush=True)
        if status != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
