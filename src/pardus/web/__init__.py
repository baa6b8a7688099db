"""pardus.web: the FastAPI app of `pardus serve` (app.py), user tokens (users.py),
the server as a child process for tests and benches (process.py)."""
