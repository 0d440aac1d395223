"""Every benchmark, one table: ``python -m bench.run_all`` writes ``bench/results.md``.

Run from the repository root after the README's setup (``scripts/test`` installs
what the benchmarks need, including the ``test`` extra and ``tests/interop``'s
Node packages)::

    python -m bench.run_all            # full sizes (~30 min on 2 cores), then bench/results.md
    python -m bench.run_all --smoke    # every benchmark's smoke mode; prints, writes nothing
    python -m bench.run_all --only sync_load,kernels --output /tmp/results.md

Each benchmark runs in its own process (its output is shown as it goes), so
one that fails is reported and the others still run. The table has, for every
metric, ours, the anchor measured in the same run, the ratio, issue 6's
target and whether ours meets it; ``sync_load`` rows compare with the anchor
their target names (the Node server for latency, pycrdt-websocket for CPU and
memory), and its own table, with both anchors, is in the details below the
table. A time never fails the run; the exit status is non-zero only if a
benchmark could not run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.open_and_store import machine

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.md"
BENCHMARKS = ("open_and_store", "execution_log", "kernels", "sync_load")

# Issue 6's targets for the rows of benchmarks that do not print one: metric pattern -> target.
# "<= 3x anchor" compares ours with three times the anchor (the .ipynb's size).
TARGETS = {
    "open_and_store": {
        r"open \d+ cells, stored, not loaded, p95": "<= 100 ms",
        r"open \d+ cells, loaded, 1 client in, p95": "<= 20 ms",
        r"store after \d+ keystrokes, room open": "<= 3x anchor",
        r"store after room unloaded": "<= 3x anchor",
        r"keystroke made -> durable in the store, p95": "<= 500 ms",
        r"autosave of \d+ cells while typing: worst loop stall": "<= 10 ms",
    },
    "execution_log": {
        r"sqlite: executions logged/s, flood \(durable\)": ">= 2000 /s",
        r"sqlite: worst loop stall at 2,000/s": "<= 1 ms",
    },
}


@dataclass
class Line:
    benchmark: str
    metric: str
    ours: str
    anchor: str
    ratio: str
    target: str
    met: str
    anchor_name: str


def number(text: str) -> float | None:
    """The leading number of a formatted value ("1,234 KiB" -> 1234.0), or None."""
    match = re.match(r"\s*(-?[\d,]*\.?\d+)", text)
    return float(match.group(1).replace(",", "")) if match else None


def verdict(ours: str, anchor: str, target: str) -> str:
    """"yes" / "NO" when ``target`` is a bound this function can read, else ""."""
    value = number(ours)
    if value is None:
        return ""
    if match := re.match(r"<= (\d+)x anchor", target):
        bound = number(anchor)
        return "" if bound is None else ("yes" if value <= float(match.group(1)) * bound else "NO")
    match = re.match(r"(<=|>=) .*?(-?[\d,]*\.?\d+)\s*\S*\s*$", target)
    if not match:
        return ""
    bound = float(match.group(2).replace(",", ""))
    return "yes" if (value <= bound if match.group(1) == "<=" else value >= bound) else "NO"


def parse_table(benchmark: str, output: str) -> list[Line]:
    """The last Markdown table a benchmark printed, as lines of the combined table."""
    blocks: list[list[str]] = []
    previous = False
    for raw in output.splitlines():
        is_row = raw.startswith("| ")
        if is_row and not previous:
            blocks.append([])
        if is_row:
            blocks[-1].append(raw)
        previous = is_row
    if not blocks:
        return []
    rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in blocks[-1]]
    header, body = rows[0], [r for r in rows[2:] if len(r) == len(rows[0])]
    lines = []
    for cells in body:
        row = dict(zip(header, cells))
        metric = row.get("metric", "")
        target = row.get("target") or next(
            (t for pattern, t in TARGETS.get(benchmark, {}).items() if re.match(pattern, metric)), ""
        )
        ours, anchor = row.get("ours", ""), row.get("anchor", "")
        lines.append(
            Line(benchmark, metric, ours, anchor, row.get("ours/anchor", ""), target,
                 verdict(ours, anchor, target), row.get("anchor is", ""))
        )  # fmt: skip
    return lines


def sync_lines(data: dict[str, object]) -> list[Line]:
    """sync_load's rows, each against the anchor its target names."""
    from bench.sync_load import fmt, ratio

    labels: dict[str, str] = data["labels"]  # type: ignore[assignment]
    lines = []
    for row in data["rows"]:  # type: ignore[attr-defined]
        versus = row["versus"]
        values, notes, unit = row["values"], row["notes"], row["unit"]
        if versus not in values:  # that anchor was not run: compare with whichever was
            versus = next((k for k in values if k != "ours"), versus)
        ours, anchor = values.get("ours"), values.get(versus)
        met = {True: "yes", False: "NO", None: ""}[row["met"]]
        lines.append(
            Line("sync_load", row["metric"], fmt(ours, unit, notes.get("ours", "")),
                 fmt(anchor, unit, notes.get(versus, "")), ratio(ours, anchor), row["target"], met,
                 labels.get(versus, versus))
        )  # fmt: skip
    return lines


def run(benchmark: str, smoke: bool, json_path: Path) -> tuple[int, str, float]:
    """Run one benchmark, echoing its output; return its exit code, output and seconds."""
    argv = [sys.executable, "-m", f"bench.{benchmark}", *(["--smoke"] if smoke else [])]
    if benchmark == "sync_load":
        argv += ["--json", str(json_path)]
    print(f"\n=== {' '.join(argv[1:])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=BENCH_DIR.parent)  # fmt: skip
    assert proc.stdout is not None
    captured = []
    for raw in proc.stdout:
        print(raw, end="", flush=True)
        captured.append(raw)
    return proc.wait(), "".join(captured), time.perf_counter() - started


def render(lines: list[Line]) -> str:
    header = ("benchmark", "metric", "ours", "anchor", "ours/anchor", "target", "met", "anchor is")
    cells = [(x.benchmark, x.metric, x.ours, x.anchor, x.ratio, x.target, x.met, x.anchor_name) for x in lines]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    out = []
    for c in [header, tuple("-" * w for w in widths), *cells]:
        out.append("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |")
    return "\n".join(out)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every benchmark's smoke mode")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--output", type=Path, help=f"where to write the report (full mode: {RESULTS})")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only.split(",")]
    output = args.output or (None if args.smoke else RESULTS)
    started_at = datetime.datetime.now().astimezone()
    load_before = load_average()
    lines: list[Line] = []
    details: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-all-") as tmp:
        for benchmark in chosen:
            json_path = Path(tmp) / f"{benchmark}.json"
            code, text, seconds = run(benchmark, args.smoke, json_path)
            if code != 0:
                failed.append(f"{benchmark} (exit {code})")
            found = sync_lines(json.loads(json_path.read_text())) if json_path.exists() else parse_table(benchmark, text)
            lines += found
            details.append(f"### {benchmark} ({seconds:.0f} s, exit {code})\n\n```text\n{text.rstrip()}\n```\n")
    table = render(lines)
    mode = "smoke" if args.smoke else "full"
    summary = (
        f"{mode} run of {', '.join(chosen)}, started {started_at:%Y-%m-%d %H:%M %Z}\n"
        f"machine: {machine()}\n"
        f"load average (1, 5, 15 min) before: {load_before}; after: {load_average()}"
    )
    print(f"\n=== all benchmarks\n{summary}\n\n{table}")
    if failed:
        print(f"\nbenchmarks that could not run: {', '.join(failed)}")
    if output is not None:
        command = "python -m bench.run_all" + (" --smoke" if args.smoke else "")
        output.write_text(
            "# Benchmark results\n\n"
            f"Written by `{command}` (see bench/README.md); the figures are one run's, on a\n"
            "machine that may be shared with other work: the load average says how busy it was.\n\n"
            + "\n".join(f"- {s}" for s in summary.splitlines())
            + (f"\n- could not run: {', '.join(failed)}" if failed else "")
            + f"\n\n{table}\n\n## Each benchmark's output\n\n" + "\n".join(details)
        )
        print(f"\nwritten to {output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
