"""A wake-up that a thread can sleep on in select() beside other descriptors."""

from __future__ import annotations

import contextlib
import os
import select


class Doorbell:
    """Slot threads ring it when a job finishes; the dispatcher sleeps on it and the database.

    One unread byte in the pipe is enough to wake the sleeper, so a ring while one is pending
    costs no system call.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._rung = False

    def fileno(self) -> int:
        return self._read_fd

    def ring(self) -> None:
        if self._rung:
            return
        self._rung = True
        with contextlib.suppress(BlockingIOError):  # the pipe is full of rings already
            os.write(self._write_fd, b"!")

    def clear(self) -> None:
        # Drain first, then clear the flag. The other order loses the doorbell for good: a ring
        # between the two sets the flag and writes a byte that the drain then swallows, so the
        # flag stays set on an empty pipe and every later ring returns early. In this order a
        # ring that lands in between is skipped, but the sleeper looks at the work after
        # clear() returns anyway.
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 4096):
                pass
        self._rung = False

    def wait(self, timeout: float) -> bool:
        readable, _, _ = select.select([self._read_fd], [], [], max(0.0, timeout))
        if readable:
            self.clear()
            return True
        return False

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)
