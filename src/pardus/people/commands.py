"""`pardus users ...`: the people who sign in to the web app or use the API, and their roles."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pardus.console import console, fail, workspace_cmd

users_app = typer.Typer(help="People who sign in to the web app or use the API: roles, passwords, tokens.",
                        no_args_is_help=True)


def _ask_password() -> str:
    from pardus.people.accounts import UserError, check_password

    first = typer.prompt("Password", hide_input=True)
    try:
        check_password(first)
    except UserError as exc:
        raise fail(str(exc)) from exc
    if typer.prompt("The same password again", hide_input=True) != first:
        raise fail("the two passwords differ; nothing was changed")
    return first


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name, e.g. ivanov.")],
    role: Annotated[str, typer.Option(help="viewer, reviewer, ranger or admin.")] = "ranger",
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    password_prompt: Annotated[bool, typer.Option("--password-prompt", help="Ask for a password to sign in to "
                                                  "the web app (typed twice, never shown).")] = False,
    token: Annotated[bool, typer.Option(help="Also issue an API token for scripts (--no-token: none).")] = True,
) -> None:
    """Add a person (or change their role, password or token); prints a new API token once.

    Roles: viewer (reads everything but exact places of sensitive species), reviewer (also labels
    photos and decides identities), ranger (works alerts), admin (people, cameras, rules).

    Example: pardus users add ivanov --role ranger --password-prompt
    """
    from pardus.people.accounts import UserError, add_user, check_name, check_role

    try:
        check_name(name)
        role = check_role(role)
    except UserError as exc:
        raise fail(str(exc)) from exc
    password = _ask_password() if password_prompt else None
    with workspace_cmd(UserError) as ws:
        issued = add_user(ws, name, role, email, password, token=token)
    console.print(f"{name} ({role})" + ("; can sign in to the web app with the password given" if password else ""))
    if issued:
        console.print("API token, shown only now (Pardus keeps only a hash of it):")
        console.print(issued, soft_wrap=True, highlight=False)


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """End a person's access at once: password, API token and every signed-in browser.

    `pardus users add NAME --password-prompt` gives access again."""
    from pardus.people.accounts import UserError, revoke_user

    with workspace_cmd(UserError) as ws:
        ended = revoke_user(ws, name)
    console.print(f"{name}: access revoked ({ended} signed-in session(s) ended). Their history stays.")


@users_app.command("list")
def users_list() -> None:
    """The people, their roles and how they can sign in."""
    from pardus.people.accounts import list_users

    with workspace_cmd() as ws:
        table = Table(title="People")
        for col in ("name", "role", "password", "API token", "state", "e-mail"):
            table.add_column(col)
        for u in list_users(ws):
            state = f"[red]revoked {u.revoked:%Y-%m-%d}[/]" if u.revoked else "[green]active[/]"
            table.add_row(u.name, u.role, "yes" if u.has_password else "-", "yes" if u.has_token else "-", state,
                          u.email or "-")
        console.print(table)


@users_app.command("audit")
def users_audit(limit: Annotated[int, typer.Option(help="How many events, newest first.")] = 50) -> None:
    """Who exported exact places of sensitive species, and who was refused (the audit log)."""
    from pardus.people.audit import recent

    if not 1 <= limit <= 100_000:
        raise fail(f"--limit must be 1-100000, not {limit}")
    with workspace_cmd() as ws, ws.db.session() as s:
        events = recent(s, limit)
    if not events:
        console.print("The audit log is empty: nobody has asked for exact places yet.")
        return
    table = Table(title="Audit log")
    for col in ("when (UTC)", "who", "what", "result", "details"):
        table.add_column(col)
    for e in events:
        result = "[green]given[/]" if e.allowed else "[red]refused[/]"
        details = ", ".join(f"{k}: {v}" for k, v in e.detail.items())
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.who, e.action, result, details)
    console.print(table)
