"""Benchmark: `backup-harness inspect` against libsignal's MessageBackup.validate on one archive.

For each size (default 1,000,000 and 2,000,000 chat items) the script writes a synthetic
legacy-layout archive (one chat, incoming text messages of ten random words, see
synthetic_backup.py), then times both validators as subprocesses on the same file, alternating
them for --rounds rounds. It prints the median wall time of each, the ratio libsignal / inspect
(above 1 means inspect is faster) and the peak resident memory of each process tree, sampled
with psutil every 10 ms.

Usage: .venv/bin/python benchmarks/inspect_vs_libsignal.py [--items 1000000 2000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_backup  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NODE_SCRIPT = PROJECT_ROOT / "benchmarks" / "libsignal_validate.js"
SAMPLE_SECONDS = 0.01


def inspect_command(archive: Path, key_file: Path) -> list[str]:
    script = Path(sys.executable).with_name("backup-harness")
    program = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
    return program + [
        "inspect", str(archive), "--recovery-key-file", str(key_file),
        "--aci", synthetic_backup.ACI, "--json",
    ]  # fmt: skip


def libsignal_command(archive: Path) -> list[str]:
    return ["node", str(NODE_SCRIPT), str(archive), synthetic_backup.ACI]


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a command; return its wall time (s), peak RSS of its process tree (MB) and status."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            processes = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in processes))
        except psutil.Error:
            pass  # the process ended between poll() and the sample
        time.sleep(SAMPLE_SECONDS)
    elapsed = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:2])} exited with {process.returncode}: {stderr.decode()[-500:]}"
        )
    return {"seconds": elapsed, "peak_rss_mb": peak / 2**20, "output": stdout.decode()[-2000:]}


def run_size(items: int, rounds: int, workdir: Path, env: dict[str, str]) -> dict[str, object]:
    archive = workdir / f"synthetic-{items}.bin"
    key_file = workdir / "recovery-key.txt"
    key_file.write_text(synthetic_backup.RECOVERY_KEY + "\n")
    key_file.chmod(0o600)
    print(f"writing {items:,} chat items to {archive} ...", flush=True)
    started = time.perf_counter()
    plain_size = synthetic_backup.write_encrypted(archive, items)
    archive_size = archive.stat().st_size
    print(
        f"  {plain_size / 1e6:.1f} MB of frames, {archive_size / 1e6:.1f} MB encrypted, "
        f"written in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    runs: dict[str, list[dict[str, float]]] = {"inspect": [], "libsignal": []}
    for round_number in range(1, rounds + 1):
        for name, command in (
            ("inspect", inspect_command(archive, key_file)),
            ("libsignal", libsignal_command(archive)),
        ):
            result = measure(command, env)
            runs[name].append(result)
            print(
                f"  round {round_number} {name:9s} {result['seconds']:6.2f} s  "
                f"peak RSS {result['peak_rss_mb']:6.1f} MB",
                flush=True,
            )
    check_outputs(runs, items)
    archive.unlink()
    summary = {
        name: {
            "median_seconds": statistics.median(r["seconds"] for r in results),
            "min_seconds": min(r["seconds"] for r in results),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        }
        for name, results in runs.items()
    }
    ratio = summary["libsignal"]["median_seconds"] / summary["inspect"]["median_seconds"]
    return {
        "items": items,
        "frames_mb": plain_size / 1e6,
        "archive_mb": archive_size / 1e6,
        **summary,
        "ratio": ratio,
    }


def check_outputs(runs: dict[str, list[dict[str, float]]], items: int) -> None:
    """Make sure both validators read the whole archive and found it valid."""
    result = json.loads(runs["inspect"][-1]["output"])
    if result["chat_items"] != items or result["findings"]:
        raise RuntimeError(f"inspect read {result['chat_items']} items, findings {result['findings'][:3]}")
    verdict = json.loads(runs["libsignal"][-1]["output"].strip().splitlines()[-1])
    if not verdict["ok"]:
        raise RuntimeError(f"libsignal rejected the archive: {verdict['error']}")


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1_000_000, 2_000_000])
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each tool (default 3)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env["BENCH_RECOVERY_KEY"] = synthetic_backup.RECOVERY_KEY
    env["NODE_PATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT / "node_modules"), env.get("NODE_PATH", "")) if p)
    print(f"machine: {machine_description()}; load average {os.getloadavg()[0]:.2f}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as workdir:
        for items in args.items:
            results.append(run_size(items, args.rounds, Path(workdir), env))
    print()
    print(f"{'items':>10} {'inspect s':>10} {'libsignal s':>12} {'ratio':>6} {'inspect MB':>11} {'libsignal MB':>13}")
    for r in results:
        print(
            f"{r['items']:>10,} {r['inspect']['median_seconds']:>10.2f} {r['libsignal']['median_seconds']:>12.2f} "
            f"{r['ratio']:>6.2f} {r['inspect']['peak_rss_mb']:>11.1f} {r['libsignal']['peak_rss_mb']:>13.1f}"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
