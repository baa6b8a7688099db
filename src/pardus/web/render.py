"""Drawing pages: the Jinja2 environment (autoescaped: a note with a script tag shows as text), the
context every page shares (who is signed in, their CSRF token), and small drawing helpers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pardus.people.accounts import csrf_token

TEMPLATES = Path(__file__).with_name("templates")
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True,
                  lstrip_blocks=True)


def when(value: str | datetime | None) -> str:
    """An instant as a person reads it (UTC, minutes): '2024-06-03 22:41 UTC'."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


def sparkline(points: list[tuple[str, float]], width: int = 240, height: int = 48) -> str:
    """The SVG ``points`` of a polyline for a health series (a small plot needs no plotting library)."""
    if not points:
        return ""
    times = [datetime.fromisoformat(t).timestamp() for t, _ in points]
    values = [v for _, v in points]
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    sx = (width - 4) / (t1 - t0) if t1 > t0 else 0.0
    sy = (height - 4) / (v1 - v0) if v1 > v0 else 0.0
    return " ".join(f"{2 + (t - t0) * sx:.1f},{height - 2 - (v - v0) * sy if sy else height / 2:.1f}"
                    for t, v in zip(times, values, strict=True))


env.filters["when"] = when
env.globals["sparkline"] = sparkline


def render(request: Request, template: str, context: dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    secret = getattr(request.state, "session_secret", None)
    ctx = {"request": request, "csrf": csrf_token(secret) if secret else None, "who": None, **context}
    return HTMLResponse(env.get_template(template).render(ctx), status_code=status, headers=headers)


def render_error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    if request.headers.get("hx-request") == "true":  # a partial: the message goes where the answer would
        return HTMLResponse(env.get_template("_error.html").render(message=message, status=status),
                            status_code=status, headers=headers)
    return render(request, "error.html", {"status": status, "message": message}, status=status, headers=headers)
