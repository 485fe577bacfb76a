"""Background work as services: run_once(now) on a schedule, the leader-only ones
under an elected leader."""
