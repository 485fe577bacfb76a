"""Power loss: with synchronous=FULL, every acknowledged job is on disk when enqueue returns.

Copying the database files while a process writes cannot show this: a copy reads the page
cache, which holds writes that a power cut would lose. Instead an LD_PRELOAD shim (powercut.c)
logs every write, truncate, fsync and directory fsync of the producer on the database files,
in one order with the lines it prints, and the test rebuilds the disk images a power cut at the
moment of the kill could leave behind (see powercut.py for the model): the synced state, and
many random mixes of the unsynced sectors. Every image must open, pass integrity_check, and hold
every acknowledged job with its payload.

The NORMAL runs show that the harness sees what a missing fsync costs: there, the synced-only
image lacks exactly the acknowledged jobs whose WAL frames no later fsync covered.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from durableq.client import Client
from tests.reliability.battery import TEST_TIMEOUT, Figures, seeded_rng, sized
from tests.reliability.powercut import Ack, Disk, Event, acknowledgements, build_shim, read_log
from tests.reliability.producer import BATCH
from tests.support.processes import REPO, environment, wait_until

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or shutil.which("cc") is None,
        reason="the power-cut shim needs Linux and a C compiler (cc)",
    ),
    pytest.mark.timeout(TEST_TIMEOUT),
]


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("powercut"))


@pytest.mark.parametrize(
    ("synchronous", "mode"), [("FULL", "single"), ("FULL", "batch"), ("NORMAL", "single")]
)
def test_power_cut_keeps_every_acknowledged_job(
    synchronous: str,
    mode: str,
    shim: Path,
    db_path: Path,
    tmp_path: Path,
    figures: Callable[[str], Figures],
) -> None:
    seed, rng = seeded_rng()
    report = figures(f"power cut, synchronous={synchronous}, {mode} (seed {seed})")
    Client.open(str(db_path)).close()  # schema and WAL mode, durable before the run
    files = [db_path, Path(f"{db_path}-wal")]
    base = {str(path): path.read_bytes() for path in files if path.exists()}
    # Enough commits for a checkpoint or two (about every 400 here): they write the main file.
    commits = rng.randint(500, 1000)
    acks_wanted = commits * (BATCH if mode == "batch" else 1)
    events = _run_and_cut(shim, db_path, tmp_path, synchronous, mode, acks_wanted)
    acks = acknowledgements(events)
    disk = _replay(base, events)

    wal = f"{db_path}-wal"
    exposed = {ack.job_id for ack in acks if not _synced_after(events, wal, ack)}
    images = [disk.image(None)] + [disk.image(rng) for _ in range(sized(20, 200))]
    lost_per_image = [_lost(files, acks, tmp_path / f"image-{n}") for n, files in enumerate(images)]
    report["acknowledged"], report["images"] = len(acks), len(images)
    report["fsyncs"] = sum(1 for event in events if event.op == "S")
    report["checkpoint_writes"] = sum(1 for e in events if e.op == "W" and e.path == str(db_path))
    report["unsynced_acks"] = len(exposed)
    report["lost_in_synced_image"] = len(lost_per_image[0])
    assert len(acks) >= acks_wanted
    if synchronous == "FULL":
        assert not exposed, "an acknowledged commit was not fsynced before enqueue returned"
        assert all(not lost for lost in lost_per_image), lost_per_image
    else:
        assert lost_per_image[0] == exposed
        assert all(lost <= exposed for lost in lost_per_image)


def _run_and_cut(
    shim: Path, db: Path, tmp: Path, synchronous: str, mode: str, acks: int
) -> list[Event]:
    """Run a producer under the shim and SIGKILL it after `acks` printed ids: the power cut."""
    log, out = tmp / "powercut.log", tmp / "producer.out"
    env = environment(
        LD_PRELOAD=str(shim),
        POWERCUT_LOG=str(log),
        POWERCUT_PREFIX=str(db),
        POWERCUT_DIR=str(db.parent),
        DURABLEQ_SYNCHRONOUS=synchronous,
    )
    command = [sys.executable, "-m", "tests.reliability.producer", str(db), "cut", mode]
    with open(out, "wb") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=stdout, env=env, cwd=REPO)
    try:
        wait_until(lambda: out.read_bytes().count(b"\n") >= acks, timeout=120, what="acks")
    finally:
        process.kill()
        process.wait()
    return read_log(log)


def _replay(base: dict[str, bytes], events: list[Event]) -> Disk:
    """The disk after the log; checked against the real files, so the log missed no write.

    The last event may be a write the kill stopped before it was made (it is logged first).
    """
    disk = Disk.starting_with(base)
    disk.replay(events)
    if not _is_on_disk(disk) and events and events[-1].op in "WT":
        shorter = Disk.starting_with(base)
        shorter.replay(events[:-1])
        assert _is_on_disk(shorter), "replaying the log does not give the files on disk"
    else:
        assert _is_on_disk(disk), "replaying the log does not give the files on disk"
    return disk


def _is_on_disk(disk: Disk) -> bool:
    return all(Path(path).read_bytes() == content for path, content in disk.current.items())


def _synced_after(events: list[Event], wal: str, ack: Ack) -> bool:
    """Whether the WAL was fsynced after the last frame written before this acknowledgement."""
    writes = [i for i, e in enumerate(events[: ack.position]) if e.op == "W" and e.path == wal]
    last_write = writes[-1] if writes else -1
    return any(e.op == "S" and e.path == wal for e in events[last_write + 1 :])


def _lost(files: dict[str, bytes], acks: list[Ack], directory: Path) -> set[int]:
    """Open a disk image as SQLite would after a reboot; the acknowledged jobs it lacks."""
    directory.mkdir()
    for path, content in files.items():
        (directory / Path(path).name).write_bytes(content)
    # The database, not its -wal or the -lock file its writers queue on (store/sqlite/turns.py).
    image = directory / next(Path(p).name for p in files if not p.endswith(("-wal", "-lock")))
    with closing(sqlite3.connect(image)) as connection:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        assert check == "ok", f"{directory.name}: {check}"
        stored = dict(connection.execute("SELECT id, payload FROM jobs"))
    wrong = [
        a.job_id for a in acks if a.job_id in stored and json.loads(stored[a.job_id]) != a.payload
    ]
    assert not wrong, f"{directory.name}: acknowledged ids with another payload: {wrong}"
    return {ack.job_id for ack in acks if ack.job_id not in stored}
