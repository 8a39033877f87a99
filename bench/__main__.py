"""`python -m bench [--quick] [--section NAME ...]`: every benchmark section, then the
change against the last recorded run.

Each section runs in its own process, so one section's memory and threads never
weigh on the next. `make bench` runs them all (half an hour or more on 2 cores: the
sections through a real livekit-server take minutes each); `make bench-quick` runs the
short versions of the in-process sections (under its 3 minutes on 2 cores), and
`--quick --section NAME` the short version of any one. `--record` copies this
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

# name: (module, arguments for --quick, or None: not in --quick). The sections that start
# Chromium or a whole stack (livekit-server, token server, worker) take from 16 s to minutes
# even when short, so `make bench-quick` (its goal: under 3 minutes) leaves them to
# `make bench` or `--section NAME`.
SECTIONS: dict[str, tuple[str, list[str] | None]] = {
    "session_starts": ("bench.session_starts", ["--quick"]),
    "retrieval": ("bench.retrieval", ["--quick"]),
    "turns": ("bench.turns", ["--quick"]),
    "turn_taking": ("bench.turn_taking", None),
    "capacity": ("bench.capacity", ["--quick"]),
    "tts": ("bench.tts", ["--quick"]),
    "widget_bytes": ("bench.widget_bytes", None),
    "widget_call": ("bench.widget_call", None),
    "analysis": ("bench.analysis", ["--quick"]),
    "voice_to_voice": ("bench.voice_to_voice", None),
    "capacity_rooms": ("bench.capacity_rooms", None),
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
    names = args.section or [n for n, (_, quick) in SECTIONS.items() if not args.quick or quick is not None]
    for name in names:
        module, quick_args = SECTIONS[name]
        print(f"\n== {name}", flush=True)
        started = time.monotonic()
        short = ["--quick"] if quick_args is None else quick_args  # a section asked for by name
        done = subprocess.run([sys.executable, "-m", module, *(short if args.quick else [])], cwd=ROOT)
        print(f"({name}: {time.monotonic() - started:.0f} s)")
        if done.returncode != 0:
            failed.append(name)
    print("\n== change against the last recorded run")
    compare(names)
    if args.record:
        RECORDED.mkdir(parents=True, exist_ok=True)
        for name in names:
            if (RESULTS / f"{name}.json").exists():
                shutil.copy(RESULTS / f"{name}.json", RECORDED / f"{name}.json")
        print(f"recorded in {RECORDED.relative_to(ROOT)}")
    if args.quick and not args.section:
        left = [n for n, (_, quick) in SECTIONS.items() if quick is None]
        print(
            f"not in --quick (each starts Chromium or a whole stack): {', '.join(left)}; `make bench` runs them"
        )
    if failed:
        print(f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
