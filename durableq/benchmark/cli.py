"""How long the CLI's commands take as whole processes, as a shell script would see them: the
read commands (`jobs show`, `jobs list`, `stats`, `queues`, `workers`) and `enqueue`, on a ready
database of a few thousand jobs, beside a bare `python -c pass`."""

from __future__ import annotations

from durableq.benchmark.harness import Bench
from durableq.benchmark.report import Report, Target, ms, number
from durableq.benchmark.throughput import wall_ms

READ_COMMAND = Target("<=", 200, " ms")
JOBS = 5_000  # in the database the commands read


COMMANDS = (
    ("jobs show", ("jobs", "show", "1")),
    ("jobs list", ("jobs", "list")),
    ("stats", ("stats",)),
    ("queues", ("queues",)),
    ("workers", ("workers",)),
    ("enqueue", ("enqueue", "noop")),
)


def cli(bench: Bench, calls: int, report: Report) -> None:
    db = bench.fresh("cli", JOBS)
    startup = [wall_ms(bench, ["-c", "pass"]) for _ in range(calls)]
    report.record("cli", "python_startup", {"min_ms": min(startup)})
    for name, args in COMMANDS:
        bench.progress(f"cli: `durableq {' '.join(args)}`, {calls} calls")
        took = sorted(
            wall_ms(bench, ["-m", "durableq", "--db", str(db), *args]) for _ in range(calls)
        )
        key = name.replace(" ", "_")
        figures = {"calls": calls, "median_ms": took[len(took) // 2], "min_ms": took[0]}
        report.record("cli", key, figures)
        report.row(
            "cli",
            f"`durableq {' '.join(args)}` ({JOBS:,} jobs in the database)",
            f"median {ms(figures['median_ms'])} (min {number(took[0])}; bare `python -c pass` "
            f"{number(min(startup))})",
            target=READ_COMMAND if name != "enqueue" else None,
            figure=f"cli.{key}.median_ms",
        )
