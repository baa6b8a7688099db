"""Releasing exact places of sensitive species: only to a person who proves who they are.

A typed user name proves nothing (any shell user can type an admin's name), so an export with
exact coordinates needs that person's password, checked like a web sign-in, and a role that may
see exact places (reviewer, admin). Every attempt, granted or refused, goes to the audit log with
what was asked and, when granted, which sensitive places left exactly; the refusal is recorded
before the error is raised, in its own transaction, so nothing about it can be lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pardus.interop.camtrap_dp import ROLES_WITH_EXACT_COORDINATES, CamtrapDPError, ExportReport, export_camtrap_dp
from pardus.people.accounts import check_sign_in
from pardus.people.audit import EXACT_PLACES_EXPORT, record
from pardus.store import Workspace
from pardus.store.models import Deployment, Location


class ReleaseRefused(CamtrapDPError):
    """The person could not be authenticated, or their role may not see exact places."""


def sensitive_places(ws: Workspace, deployment_ids: Sequence[str] | None) -> list[str]:
    """The sensitive locations an export of these deployments (None: all) would carry."""
    q = (select(Location.id).join(Deployment, Deployment.location_id == Location.id)
         .where(Location.sensitive.is_(True)).distinct())
    if deployment_ids:
        q = q.where(Deployment.id.in_(list(deployment_ids)))
    with ws.db.session() as s:
        return sorted(s.scalars(q))


def export_with_exact_places(ws: Workspace, out: Path, *, user: str, password: str,
                             deployment_ids: Sequence[str] | None = None, **export: Any) -> ExportReport:
    """``export_camtrap_dp`` with exact coordinates for ``user``, authenticated and audited."""
    asked = {"out": str(Path(out).resolve()), "deployments": list(deployment_ids or []) or "all",
             "copy_media": bool(export.get("copy_media", False))}
    with ws.db.session() as s:
        person = check_sign_in(s, user, password)
        why = None
        if person is None:
            why = "wrong user name or password (or the account is revoked)"
        elif person.role not in ROLES_WITH_EXACT_COORDINATES:  # a ranger sees places in the app, exports none
            why = (f"{person.name} is a {person.role}; only reviewers and admins may export exact places of "
                   "sensitive species")
        record(s, user, EXACT_PLACES_EXPORT, allowed=why is None, **asked, **({"refused": why} if why else {}))
    if why is not None:
        raise ReleaseRefused(f"exact coordinates refused: {why}. Export without --exact-coordinates (sensitive "
                             "places are then rounded), or ask a reviewer or an admin")
    places = sensitive_places(ws, deployment_ids)
    rep = export_camtrap_dp(ws, out, deployment_ids=deployment_ids, exact_coordinates=True, allow_exact=True,
                            **export)
    with ws.db.session() as s:
        record(s, user, EXACT_PLACES_EXPORT + "-written", allowed=True, **asked, sensitive_places=places)
    return rep
