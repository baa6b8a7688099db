"""Signing in and out of the web app.

The sign-in form is protected against login CSRF too: before anyone is signed in, a random
pre-session cookie stands in for the session, and the form carries the token derived from it.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pardus.people.accounts import (
    SESSION_MAX,
    Person,
    check_sign_in,
    close_session,
    csrf_matches,
    csrf_token,
    open_session,
)
from pardus.store import Workspace
from pardus.web.deps import SESSION_COOKIE, optional_person, workspace
from pardus.web.render import render

router = APIRouter(tags=["sign-in"], include_in_schema=False)
PRE_COOKIE = "pardus_pre"


def _safe_next(raw: str | None) -> str:
    """Only a path on this site: never send a person to another site after signing in."""
    if not raw or len(raw) > 2000:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def _form(request: Request, next_url: str, error: str | None = None, name: str = "", status: int = 200) -> Response:
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or len(pre) > 128:
        pre = secrets.token_urlsafe(24)
    response = render(request, "signin.html", {"next": next_url, "error": error, "name": name,
                                               "csrf": csrf_token(pre)}, status=status)
    _cookie(response, request, PRE_COOKIE, pre, 3600)
    return response


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None,
                      who: Person | None = Depends(optional_person)) -> Response:
    if who is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _form(request, _safe_next(next))


@router.post("/signin")
async def signin(request: Request, name: str = Form("", max_length=200),
                 password: str = Form("", max_length=2000),
                 csrf_token_: str = Form("", alias="csrf_token", max_length=200),
                 next: str = Form("/", max_length=2000),
                 ws: Workspace = Depends(workspace)) -> Response:
    nxt = _safe_next(next)
    if not csrf_matches(request.cookies.get(PRE_COOKIE), csrf_token_):
        return _form(request, nxt, "This sign-in form is out of date; please try again.", name, status=403)
    if not name.strip() or not password:
        return _form(request, nxt, "Enter your user name and your password.", name, status=400)

    def check() -> str | None:
        with ws.db.session() as s:
            who = check_sign_in(s, name.strip(), password)
            return open_session(s, who) if who is not None else None

    secret = await run_in_threadpool(check)
    if secret is None:
        return _form(request, nxt, "Wrong user name or password. Check both and try again; an admin can set a new "
                                   "password with `pardus users add NAME --password-prompt`.", name, status=401)
    response = RedirectResponse(nxt, status_code=303)
    _cookie(response, request, SESSION_COOKIE, secret, int(SESSION_MAX.total_seconds()))
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request, csrf_token_: str = Form("", alias="csrf_token", max_length=200),
                  ws: Workspace = Depends(workspace)) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    # Sign-out needs the token too: otherwise another site could sign a ranger out mid-incident.
    if secret and csrf_matches(secret, csrf_token_):
        def close() -> None:
            with ws.db.session() as s:
                close_session(s, secret)

        await run_in_threadpool(close)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return RedirectResponse("/", status_code=303)
