"""Who is asking and what they may do: shared by the desk's pages and API.

:func:`principal` reads a bearer token (``Authorization: Bearer fsd_…``, for machines) or the
signed session cookie (browsers). A cookie-authenticated request that changes anything must
carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``):
:func:`check_csrf`. :data:`Viewer` / :data:`Analyst` / :data:`Admin` are the FastAPI
dependencies of each role; :func:`do_work` is every alert change, counted in the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from desk.auth import Role, User, csrf_ok, user_by_session, user_by_token
from desk.work import Action, AlertKey, act

COOKIE = "fraudstream_desk"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    user: User
    via: str  # "session" | "token"
    csrf: str | None = None  # the session's CSRF token


def principal(request: Request) -> Principal | None:
    """Who sent ``request`` (None: nobody we know)."""
    engine: Engine = request.app.state.engine
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = user_by_token(engine, auth[7:].strip())
        return Principal(user, "token") if user else None
    data = request.app.state.sessions.read(request.cookies.get(COOKIE))
    if data is None:
        return None
    user = user_by_session(engine, data["uid"], data["ep"])
    return Principal(user, "session", data["csrf"]) if user else None


async def check_csrf(request: Request, who: Principal) -> None:
    """Refuse (403) a cookie-authenticated change without the session's CSRF token."""
    if request.method not in UNSAFE or who.via != "session":
        return
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = str((await request.form()).get("csrf_token") or "")
    if not csrf_ok(who.csrf, given):
        raise HTTPException(403, "missing or wrong CSRF token (reload the page)")


def require(role: Role) -> Any:
    """A dependency: the principal, if it has ``role`` (401 nobody, 403 too weak, 403 CSRF)."""

    async def dependency(request: Request) -> Principal:
        who = principal(request)
        if who is None:
            raise HTTPException(
                401, "log in or send a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        await check_csrf(request, who)
        if not who.user.can(role):
            raise HTTPException(403, f"{who.user.role} may not do this (needs {role})")
        return who

    return Depends(dependency)


def do_work(
    request: Request, keys: list[AlertKey], action: Action, user: User, **options: Any
) -> list[dict[str, Any]]:
    """:func:`desk.work.act` on the app's database, counted in the desk's metrics."""
    done = act(request.app.state.engine, keys, action, user, **options)
    request.app.state.metrics.changes.labels(action).inc(len(done))
    return done


Viewer = Annotated[Principal, require("viewer")]
Analyst = Annotated[Principal, require("analyst")]
Admin = Annotated[Principal, require("admin")]
