"""pardus.live: online cameras (tokens, upload API, heartbeats) and the live processing loop."""
