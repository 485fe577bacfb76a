from durableq.jobs import Action, JobStatus, check_transition


def test_claim_is_legal_from_pending() -> None:
    check_transition(Action.CLAIM, JobStatus.PENDING)
