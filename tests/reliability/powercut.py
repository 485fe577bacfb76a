"""Power-cut images: what a disk may hold after losing power, rebuilt from powercut.so's log.

The model is the one crash-consistency tools use (SQLite's own crash-test VFS, LazyFS, ALICE):
whatever a file had when it was last fsync'ed survives; each write since then may or may not
have reached the disk, independently per 512-byte sector and in any order; a new file exists
only once its directory has been fsync'ed. Bytes that did reach the disk are never corrupted
(SQLite's "powersafe overwrite" assumption).
"""

from __future__ import annotations

import random
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 512
HEADER = struct.Struct("<BIqQ")
SHIM_SOURCE = Path(__file__).with_name("powercut.c")


def build_shim(directory: Path) -> Path:
    """Compile powercut.so (needs a C compiler; the caller skips without one)."""
    shim = directory / "powercut.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM_SOURCE), "-ldl", "-lpthread"],
        check=True,
        capture_output=True,
    )
    return shim


@dataclass(frozen=True)
class Event:
    op: str  # W T S C U D A, see powercut.c
    path: str
    offset: int
    data: bytes


def read_log(log: Path) -> list[Event]:
    """The events in order; a last record torn by the kill is dropped (see powercut.c)."""
    raw = log.read_bytes()
    events, at = [], 0
    while at + HEADER.size <= len(raw):
        code, path_size, offset, size = HEADER.unpack_from(raw, at)
        end = at + HEADER.size + path_size + size
        if end > len(raw):
            break
        path = raw[at + HEADER.size : at + HEADER.size + path_size].decode()
        events.append(Event(chr(code), path, offset, raw[end - size : end]))
        at = end
    return events


Op = tuple[str, int, bytes]  # ("W", offset, data) or ("T", size, b"")


def _apply(content: bytearray, op: Op) -> None:
    kind, offset, data = op
    if kind == "T":
        del content[offset:]
        content.extend(bytes(max(0, offset - len(content))))
        return
    if len(content) < offset:
        content.extend(bytes(offset - len(content)))
    content[offset : offset + len(data)] = data


def _sectors(op: Op) -> list[Op]:
    """A write split along sector boundaries: each piece may reach the disk or not."""
    kind, offset, data = op
    if kind != "W":
        return [op]
    pieces, at = [], offset
    while at < offset + len(data):
        end = min(offset + len(data), (at // SECTOR + 1) * SECTOR)
        pieces.append(("W", at, data[at - offset : end - offset]))
        at = end
    return pieces


@dataclass
class Disk:
    """Replays the log: the synced state of every file, and what is still only in the cache."""

    synced: dict[str, bytearray]
    exists: set[str]  # durably: created before the run, or created and then the dir synced
    current: dict[str, bytearray] = field(default_factory=dict)
    pending: dict[str, list[Op]] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)  # created, directory not synced yet

    @classmethod
    def starting_with(cls, files: dict[str, bytes]) -> Disk:
        return cls(
            synced={p: bytearray(b) for p, b in files.items()},
            exists=set(files),
            current={p: bytearray(b) for p, b in files.items()},
        )

    def replay(self, events: list[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        path = event.path
        if event.op == "C":
            self.current[path] = bytearray()
            self.synced[path], self.pending[path] = bytearray(), []
            self.created.add(path)
        elif event.op in "WT":
            op: Op = (event.op, event.offset, event.data)
            _apply(self.current.setdefault(path, bytearray()), op)
            self.pending.setdefault(path, []).append(op)
        elif event.op == "S":
            for op in self.pending.pop(path, []):
                _apply(self.synced.setdefault(path, bytearray()), op)
        elif event.op == "D":
            self.exists |= self.created
            self.created.clear()
        elif event.op == "U":
            # SQLite unlinks only journals it is done with; WAL mode never does mid-run.
            raise NotImplementedError(f"the power-cut model does not handle unlink ({path})")

    def image(self, rng: random.Random | None) -> dict[str, bytes]:
        """The files after a power cut now; rng=None: exactly the synced state, no luck."""
        files = {}
        for path in set(self.synced) | set(self.pending):
            survives = path in self.exists or (
                path in self.created and rng is not None and rng.random() < 0.5
            )
            if not survives:
                continue
            content = bytearray(self.synced.get(path, b""))
            if rng is not None:
                for op in self.pending.get(path, []):
                    for piece in _sectors(op):
                        if rng.random() < 0.5:
                            _apply(content, piece)
            files[path] = bytes(content)
        return files


@dataclass(frozen=True)
class Ack:
    """A line `ID TAG SEQ` the producer printed after enqueue returned, and when (log index)."""

    job_id: int
    payload: dict[str, object]
    position: int


def acknowledgements(events: list[Event]) -> list[Ack]:
    """Every complete line the process wrote to stdout, in order with its disk events."""
    found, buffer = [], b""
    for position, event in enumerate(events):
        if event.op != "A":
            continue
        buffer += event.data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            job_id, tag, seq = line.decode().split()
            found.append(Ack(int(job_id), {"tag": tag, "seq": int(seq)}, position))
    return found
