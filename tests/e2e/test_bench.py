"""`durableq bench` runs end to end and reports sane figures. It never judges the timings.

The quick run is shared by the tests of its output (module-scoped fixture): it is the one slow
step here, about half a minute.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import DURABLEQ, environment, run_cli, wait_until

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="bench reads CPU and memory from /proc"
)

SECTIONS = {
    "enqueue",
    "cli",
    "repository",
    "baseline",
    "processing",
    "end_to_end",
    "producers",
    "idle",
    "depth",
    "memory",
    "http",
    "dashboard",
}
# Figures that may legitimately be zero or negative: memory can shrink, an idle daemon may not
# have used a whole clock tick of CPU.
SIGNED = {"growth_percent", "growth_after_warmup_percent"}
NON_NEGATIVE = {"percent_of_core"}


class QuickRun:
    def __init__(self, scratch: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.scratch = scratch
        self.returncode = result.returncode
        self.stderr = result.stderr
        self.report: dict[str, Any] = json.loads(result.stdout) if result.returncode == 0 else {}


def bench(args: Sequence[str], scratch: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`durableq bench ARGS` with its temporary files under `scratch`.

    TMPDIR in a directory of our own shows whether the run cleans up after itself and whether
    any of its daemons outlive it. On a timeout it gets SIGTERM, which it must clean up after,
    rather than the SIGKILL that would orphan its daemons.
    """
    process = subprocess.Popen(
        [*DURABLEQ, "bench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(TMPDIR=str(scratch)),
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        pytest.fail(f"durableq bench took over {timeout}s; its progress:\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    scratch = tmp_path_factory.mktemp("bench")
    return QuickRun(scratch, bench(["--quick", "--json"], scratch, timeout=170))


def test_quick_json_run_succeeds_and_covers_every_section(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    report = quick.report
    assert set(report["sections"]) == SECTIONS
    assert report["mode"] == "quick"
    assert report["synchronous"] == "FULL"  # the product default
    # Progress goes to stderr, one line per step, so stdout stays machine-readable.
    assert "processing: 1 daemon, --concurrency 16" in quick.stderr


def test_every_figure_is_a_finite_positive_number(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    leaves = list(_numbers(quick.report["sections"]))
    assert len(leaves) > 50
    for path, value in leaves:
        name = path.rsplit(".", 1)[-1]
        assert isinstance(value, int | float) and not isinstance(value, bool), path
        assert math.isfinite(value), path
        if name in SIGNED:
            continue
        if name in NON_NEGATIVE:
            assert value >= 0, path
        else:
            assert value > 0, f"{path} = {value}"


def test_every_job_enqueued_was_processed(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    sections = quick.report["sections"]
    jobs = quick.report["jobs"]
    runs = {
        "baseline": sections["baseline"]["bare_sqlite3"],
        "depth empty": sections["depth"]["empty"],
        "depth history": sections["depth"]["history"],
        "end to end": sections["end_to_end"]["producer_and_daemon"],
        "idle pickup": sections["idle"]["pickup"],
        "memory": sections["memory"]["daemon"],
        **{f"processing {key}": run for key, run in sections["processing"].items()},
    }
    # concurrency 1, 4, 16, two daemons, and the process pool
    assert len(sections["processing"]) == 5
    for name, run in runs.items():
        assert run["processed"] == run["jobs"], name
        if "enqueued" in run:  # the producer process's own count
            assert run["enqueued"] == run["jobs"], name
    for name in ("baseline", "depth empty", "depth history"):
        assert runs[name]["jobs"] == jobs, name
    for run in sections["processing"].values():
        assert run["jobs"] == jobs
        assert run["vs_baseline"] == pytest.approx(
            run["jobs_per_s"] / sections["baseline"]["bare_sqlite3"]["jobs_per_s"]
        )
    assert sections["depth"]["history"]["history_rows"] == 100_000
    for batch in (1, 50):
        assert sections["repository"][f"batch_{batch}"]["jobs"] == jobs
    assert sections["enqueue"]["single"]["jobs"] >= 1
    assert (
        sections["enqueue"]["batched"]["jobs"] % sections["enqueue"]["batched"]["batch_size"] == 0
    )


def test_every_acknowledged_http_submission_is_stored(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    runs = quick.report["sections"]["http"]
    assert set(runs) == {"clients_1", "clients_8", "clients_32", "batch"}
    for name, run in runs.items():
        assert run["acknowledged"] == run["stored"] > 0, name
        assert run["acknowledged"] == run["requests"] * run["jobs_per_request"], name
    assert runs["clients_32"]["bare_endpoint"]["jobs_per_s"] > 0


def test_latency_percentiles_are_ordered(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    sections = quick.report["sections"]
    for latency in (
        sections["end_to_end"]["producer_and_daemon"]["latency_ms"],
        sections["idle"]["pickup"]["latency_ms"],
    ):
        assert latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    memory = sections["memory"]["daemon"]
    assert memory["rss_peak_mb"] >= memory["rss_end_mb"]
    assert memory["growth_percent"] == pytest.approx(
        (memory["rss_end_mb"] - memory["rss_start_mb"]) / memory["rss_start_mb"] * 100
    )


def test_targets_are_reported_next_to_the_figures_they_judge(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    targets = quick.report["targets"]
    judged = {target["figure"] for target in targets}
    assert {
        "enqueue.single.jobs_per_s",
        "enqueue.batched.jobs_per_s",
        "processing.daemons1_concurrency4.jobs_per_s",
        "processing.daemons1_concurrency4_process.jobs_per_s",
        "dashboard.overview.median_ms",
        "dashboard.jobs_search_payload.median_ms",
        "idle.pickup.latency_ms.p50",
        "idle.pickup.latency_ms.p99",
        "idle.cpu.percent_of_core",
        "depth.ratio.percent",
        "memory.daemon.rss_peak_mb",
        "memory.daemon.growth_percent",
    } <= judged
    for target in targets:
        value = _lookup(quick.report["sections"], target["figure"])
        assert target["value"] == pytest.approx(value)
        expected = value >= target["target"] if target["op"] == ">=" else value <= target["target"]
        assert target["met"] is expected, target


def test_the_run_cleans_up_its_directory_and_daemons(quick: QuickRun) -> None:
    assert quick.returncode == 0, quick.stderr
    assert list(quick.scratch.iterdir()) == []
    assert _processes_mentioning(str(quick.scratch)) == []


def test_table_output_and_a_single_section(tmp_path: Path) -> None:
    result = bench(["--quick", "--only", "baseline", "--jobs", "50"], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("durableq ") and "synchronous=FULL" in lines[0]
    header = next(line for line in lines if line.startswith("section"))
    assert header.split() == ["section", "measurement", "result", "target", "met"]
    body = [line for line in lines if line.startswith("baseline")]
    assert len(body) == 1 and "(50 in " in body[0], result.stdout
    assert not any(line.startswith(("processing", "enqueue", "memory")) for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_stops_the_daemons_and_removes_the_files(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*DURABLEQ, "bench", "--quick", "--only", "idle"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(TMPDIR=str(tmp_path)),
    )
    try:
        wait_until(
            lambda: any("worker start" in p for p in _processes_mentioning(str(tmp_path))),
            timeout=60,
            what="the benchmark's idle daemon",
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        leftovers = _processes_mentioning(str(tmp_path))
        for leftover in leftovers:  # only ever ours: the path is this test's own
            os.kill(int(leftover.split(":", 1)[0]), signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "durableq: error: terminated" in stderr
    assert leftovers == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(240)
def test_on_a_postgresql_server_against_bare_psycopg(
    postgres_available: str, tmp_path: Path
) -> None:
    import psycopg

    admin = postgres_available.replace("+psycopg", "")

    def bench_databases() -> list[str]:
        with psycopg.connect(admin, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'durableq_bench_%%'"
            ).fetchall()
        return [row[0] for row in rows]

    before = bench_databases()
    result = bench(
        ["--quick", "--json", "--jobs", "200", "--db", postgres_available], tmp_path, timeout=220
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["database"] == "postgresql"
    sections = report["sections"]
    assert set(sections) == {"enqueue", "baseline", "processing", "end_to_end", "idle"}
    bare = sections["baseline"]["bare_psycopg"]
    assert bare["processed"] == bare["jobs"] == 200
    assert len(sections["processing"]) == 5
    for key, run in sections["processing"].items():
        assert run["processed"] == run["jobs"] == 200, key
        assert run["vs_baseline"] == pytest.approx(run["jobs_per_s"] / bare["jobs_per_s"])
    end_to_end = sections["end_to_end"]["producer_and_daemon"]
    assert end_to_end["processed"] == end_to_end["enqueued"] > 0
    assert sections["enqueue"]["bare_insert"]["ratio"] == pytest.approx(
        sections["enqueue"]["single"]["jobs_per_s"]
        / sections["enqueue"]["bare_insert"]["jobs_per_s"]
    )
    judged = {target["figure"] for target in report["targets"]}
    assert {
        "enqueue.bare_insert.ratio",
        "processing.daemons1_concurrency16.jobs_per_s",
        "end_to_end.producer_and_daemon.vs_producer_alone",
        "idle.pickup.latency_ms.p50",
    } <= judged
    for path, value in _numbers(sections):
        assert math.isfinite(value), path
        assert value >= 0 if path.rsplit(".", 1)[-1] in NON_NEGATIVE else value > 0, path
    # Every database it made on the server is gone, and nothing of it runs on.
    assert bench_databases() == before
    assert _processes_mentioning(str(tmp_path)) == []


def test_an_unknown_section_is_a_usage_error() -> None:
    result = run_cli(["bench", "--only", "everything"])
    assert result.returncode == 2
    assert result.stderr.startswith("durableq: error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


# -- helpers -----------------------------------------------------------------------------------


def _numbers(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}" if path else key)
    else:
        yield path, value


def _lookup(sections: dict[str, Any], figure: str) -> float:
    value: Any = sections
    for part in figure.split("."):
        value = value[part]
    return float(value)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found
