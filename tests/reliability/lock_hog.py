"""Holds SQLite's write lock again and again: `python -m tests.reliability.lock_hog DB LONGEST`.

Each round takes the lock (BEGIN IMMEDIATE), holds it for a random time up to LONGEST seconds,
commits nothing, and lets go for only a millisecond or two: a stand-in for a busy application
writing to the same file (big batches, a purge, a backup), so that every other writer, a daemon's
lease renewal included, must win short gaps to get its turn. Runs until killed.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time


def main(db: str, longest: str) -> None:
    connection = sqlite3.connect(db, timeout=60, isolation_level=None)
    rng = random.Random()
    while True:
        connection.execute("BEGIN IMMEDIATE")
        time.sleep(rng.uniform(0.05, float(longest)))
        connection.execute("ROLLBACK")
        time.sleep(rng.uniform(0.0005, 0.002))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
