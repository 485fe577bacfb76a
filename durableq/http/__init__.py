"""The HTTP API: FastAPI on uvicorn, served by `durableq serve` (needs the `http` extra).

app.py builds the application; routes/ holds the endpoints; problems.py turns every error into
an RFC 9457 problem+json body with a stable code; security.py holds the token rule.
"""
