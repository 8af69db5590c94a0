"""Wall time of the main job: the default suite, and the corpus round trip.

The script runs ``backup-harness run`` (default suite on the clean reference app) and
``backup-harness run --only corpus --corpus DIR`` as subprocesses, ``--rounds`` times each.
It prints the median wall time and the time per property from each run's summary (test
durations, module set-up included), so the largest share shows what dominates.

    .venv/bin/python benchmarks/run_suite.py [--rounds 3] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPOSITORY.parent / "shared" / "corpus" / "signal-message-backup-tests"


def timed_run(arguments: list[str]) -> tuple[float, dict]:
    """Run the main job once; return its wall time and its summary."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as folder:
        report = Path(folder) / "report"
        command = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())", "run", "--report", str(report), *arguments]
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if finished.returncode != 0:
            sys.exit(f"run {' '.join(arguments)} failed with exit status {finished.returncode}:\n{finished.stdout[-3000:]}")
        summary = json.loads((report / "summary.json").read_text())
    return elapsed, summary


def seconds_by_group(summary: dict) -> dict[str, float]:
    """Sum test durations per property; corpus tests are split by test function."""
    totals: dict[str, float] = collections.defaultdict(float)
    for test in summary["tests"]:
        group = test["property"]
        if group == "corpus round trip":
            group += " / " + test["nodeid"].split("::")[1].split("[")[0]
        totals[group] += test["duration_s"]
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def report(name: str, arguments: list[str], rounds: int) -> None:
    times, summaries = [], []
    for _ in range(rounds):
        elapsed, summary = timed_run(arguments)
        times.append(elapsed)
        summaries.append(summary)
    median = statistics.median(times)
    print(f"\n### {name}\n")
    print(f"Command: `backup-harness run {' '.join(arguments)}`; {len(summaries[0]['tests'])} tests.")
    print(f"Wall time: median {median:.1f} s over {rounds} rounds (min {min(times):.1f} s, max {max(times):.1f} s).\n")
    print("| Part | Seconds (median run) | Share of wall time |")
    print("|---|---|---|")
    middle = summaries[sorted(range(rounds), key=lambda index: times[index])[rounds // 2]]
    for group, seconds in seconds_by_group(middle).items():
        print(f"| {group} | {seconds:.1f} | {seconds / median:.0%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each job (default: 3)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of .binproto files")
    args = parser.parse_args()
    report("Default suite, clean reference app", [], args.rounds)
    if args.corpus.is_dir():
        report("Corpus round trip", ["--only", "corpus", "--corpus", str(args.corpus)], args.rounds)
    else:
        print(f"corpus folder {args.corpus} not found; skipped the corpus run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
