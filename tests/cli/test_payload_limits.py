"""A payload far over the limit is refused without being read whole: a 100 MB file used to
cost 416 MB of memory before the 8 MiB check refused it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.processes import environment


def test_a_100_mb_payload_file_is_refused_in_little_memory(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as out:
        out.write(b'{"blob": "')
        for _ in range(100):
            out.write(b"a" * 1_000_000)
        out.write(b'"}')
    db = tmp_path / "durableq.db"
    # The peak is read in the process itself (VmHWM, which exec resets), at exit: the rusage
    # of a child would include the test process's own memory from before the exec.
    probe = (
        "import atexit, sys\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read()\n"
        "    sys.stderr.write('peak ' + status.split('VmHWM:')[1].split()[0] + '\\n')\n"
        "atexit.register(peak)\n"
        "from durableq.cli import main\n"
        "sys.argv = ['durableq'] + sys.argv[1:]\n"
        "main()\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "--db",
            str(db),
            "enqueue",
            "noop",
            "--payload-file",
            str(huge),
        ],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "is larger than 16 MiB; a payload is at most 8 MiB" in done.stderr
    peak_mb = int(done.stderr.rsplit("peak ", 1)[1].split()[0]) / 1024
    print(f"\nrefusing a 100 MB payload file: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 100, peak_mb
