"""The web dashboard: server-rendered pages (Jinja2) with our own CSS and script, served by
the same FastAPI app as the HTTP API (`durableq serve`, `worker start --http`)."""
