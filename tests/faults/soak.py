"""Long soak run of the fault scenario, by hand: ``python -m tests.faults.soak --minutes 30``.

Runs rounds of ``scenario.run_scenario`` (a fresh server, folders and clients
each round; round ``k`` uses seed ``seed + k``) until the time is up,
printing each round's counts and the running totals. Stops at the first
round with a failure, prints every failure, its timeline and where its
server log is, and exits with status 1. ``--keep`` keeps every round's
folder (by default only failed rounds are kept).

    python -m tests.faults.soak --minutes 30 [--seed N] [--chaos-seconds 60]
    python -m tests.faults.soak --rounds 1 --seed 1234      # replay one round
    python -m tests.faults.soak --minutes 30 --no-runs      # edits and faults only, no kernels
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .scenario import ScenarioConfig, run_scenario


async def soak(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    deadline = time.monotonic() + args.minutes * 60
    base = Path(args.dir or tempfile.mkdtemp(prefix="collab-soak-"))
    print(
        f"soak: seed={seed} minutes={args.minutes} rounds={args.rounds or 'until time is up'} dir={base}",
        flush=True,
    )
    totals: collections.Counter[str] = collections.Counter()
    round_number = 0
    while (args.rounds and round_number < args.rounds) or (
        not args.rounds and time.monotonic() < deadline
    ):
        round_seed = seed + round_number
        workdir = base / f"round-{round_number:04d}-seed-{round_seed}"
        config = ScenarioConfig(
            seed=round_seed,
            chaos_seconds=args.chaos_seconds,
            python_clients=args.python_clients,
            node_clients=args.node_clients,
            run_interval=None if args.no_runs else ScenarioConfig.run_interval,
        )
        report = await run_scenario(config, workdir)
        round_number += 1
        totals.update(report.counts)
        totals["rounds"] += 1
        print(f"round {round_number}: {report.summary()}", flush=True)
        if report.failures:
            print(f"\n!!! round {round_number} (seed {round_seed}) FAILED:", flush=True)
            for failure in report.failures:
                print(f"  - {failure}", flush=True)
            print("timeline:\n  " + "\n  ".join(report.timeline), flush=True)
            print(f"server log: {workdir / 'server.log'}", flush=True)
            print(
                f"replay: python -m tests.faults.soak --rounds 1 --seed {round_seed} --chaos-seconds {args.chaos_seconds}"
            )
            return 1
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        keys = [
            "edits",
            "markers acknowledged",
            "markers present",
            "server kills",
            "kills after save",
            "client crashes",
            "proxy drops",
            "proxy stalls",
            "proxy partitions",
            "proxy cuts",
        ]
        print("  totals: " + ", ".join(f"{k}={totals[k]}" for k in ["rounds", *keys]), flush=True)
    print(
        f"soak passed: seed={seed}, {totals['rounds']} rounds, zero divergence, zero lost markers",
        flush=True,
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument(
        "--rounds", type=int, default=0, help="run this many rounds instead of --minutes"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--chaos-seconds", type=float, default=60.0)
    parser.add_argument("--python-clients", type=int, default=3)
    parser.add_argument("--node-clients", type=int, default=2)
    parser.add_argument("--no-runs", action="store_true", help="no run requests (no kernels)")
    parser.add_argument(
        "--dir", default=None, help="folder for the rounds (default: a new temp folder)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the folders of rounds that passed"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
