"""The domain, pure: jobs and their transitions, outcomes, retry, durations, payloads,
errors, settings, queue controls and the views every interface shares. No I/O here."""
