"""`python -m bench [--quick] [--section NAME ...]`: every benchmark section, then the
change against the last recorded run.

Each section runs in its own process, so one section's memory and threads never
weigh on the next. `make bench` runs them all (a few minutes on 2 cores);
`make bench-quick` runs the short versions (about a minute). `--record` copies this
run's results to bench/recorded/, the baseline later runs are compared with.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from bench.common import RESULTS, ROOT
from bench.compare import RECORDED, compare

# name: (module, arguments for --quick)
SECTIONS: dict[str, tuple[str, list[str]]] = {
    "session_starts": ("bench.session_starts", ["--quick"]),
    "retrieval": ("bench.retrieval", ["--quick"]),
    "turns": ("bench.turns", ["--quick"]),
    "turn_taking": ("bench.turn_taking", ["--quick"]),
    "capacity": ("bench.capacity", ["--quick"]),
    "tts": ("bench.tts", ["--reps", "1", "--concurrency", "1"]),
    "widget_bytes": ("bench.widget_bytes", []),
    "widget_call": ("bench.widget_call", ["--quick"]),
    "analysis": ("bench.analysis", ["--quick"]),
    "voice_to_voice": ("bench.voice_to_voice", ["--quick"]),
    "capacity_rooms": ("bench.capacity_rooms", ["--quick"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the short version of every section")
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS), help="run only these")
    parser.add_argument("--record", action="store_true", help="keep this run as the baseline for comparisons")
    args = parser.parse_args()
    failed = []
    for name in args.section or list(SECTIONS):
        module, quick_args = SECTIONS[name]
        print(f"\n== {name}", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", module, *(quick_args if args.quick else [])], cwd=ROOT)
        print(f"({name}: {time.monotonic() - started:.0f} s)")
        if done.returncode != 0:
            failed.append(name)
    print("\n== change against the last recorded run")
    compare(args.section or list(SECTIONS))
    if args.record:
        RECORDED.mkdir(parents=True, exist_ok=True)
        for name in args.section or list(SECTIONS):
            if (RESULTS / f"{name}.json").exists():
                shutil.copy(RESULTS / f"{name}.json", RECORDED / f"{name}.json")
        print(f"recorded in {RECORDED.relative_to(ROOT)}")
    if failed:
        print(f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
