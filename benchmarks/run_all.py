"""Run every benchmark script in this directory (`make bench`).

A benchmark script is any ``*.py`` file next to this one that runs as a program (it contains
``if __name__ == "__main__":``); helper modules such as ``synthetic_backup.py`` do not. Each
script runs as its own process with this interpreter, one after another, so their timings do
not disturb each other.
Exit status is non-zero when any script fails.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmark_scripts() -> list[Path]:
    return sorted(
        path
        for path in HERE.glob("*.py")
        if path.name != Path(__file__).name and 'if __name__ == "__main__":' in path.read_text()
    )


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
