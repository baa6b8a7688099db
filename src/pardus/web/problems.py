"""How the web app says no: one JSON shape for the API, a readable page for people, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pardus.live.cameras import AuthError

log = logging.getLogger("pardus.web")


class HTTPProblem(Exception):
    """A request the app refuses, with the words a person needs to put it right."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class SignInNeeded(Exception):
    """A page asked for by someone not signed in: send them to the sign-in page, then back."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def wants_html(request: Request) -> bool:
    """Pages and htmx requests get HTML; the API (and scripts) get JSON."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request") == "true"


def _field_message(errors: list[Any]) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "form"))
        parts.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install(app: FastAPI, render_error: Any) -> None:
    """Register the handlers. ``render_error(request, status, message)`` draws the HTML answer."""

    def answer(request: Request, status: int, message: str, headers: dict[str, str] | None = None,
               **extra: Any) -> Response:
        if wants_html(request):
            return render_error(request, status, message, headers)
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> Response:
        return answer(request, exc.status, exc.message, **exc.extra)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return answer(request, exc.status, exc.message, headers)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        from urllib.parse import quote

        target = "/signin?next=" + quote(exc.next_url, safe="")
        if request.headers.get("hx-request") == "true":  # htmx follows HX-Redirect with a full page load
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, 400, _field_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "nothing here: check the address", 405: "this address does not take that kind of request"}
        return answer(request, exc.status_code, message.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Logged with its traceback for the admin; the person sees what to do, never the internals.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(request, 500, "something went wrong on the server; it was logged. Try again, and tell the "
                                    "admin if it happens again")
