"""An app of recurring jobs for tests (with tests.support.recorder for the `record` handler).

Second-level crons (six fields, seconds first, as cronsim reads them) make many ticks in a few
seconds of real time; `catch_up="all"` with a large `max_catch_up` means no tick may be
skipped, so a test can tell a lost tick from a doubled one.
"""

from __future__ import annotations

from durableq import Registry

registry = Registry()

PERIODS = {"every-second": 1, "every-two-seconds": 2, "every-three-seconds": 3}
for name, seconds in PERIODS.items():
    registry.schedule(
        name,
        cron="* * * * * *" if seconds == 1 else f"*/{seconds} * * * * *",
        type="record",
        payload={"schedule": name},
        catch_up="all",
        max_catch_up=1000,
    )
