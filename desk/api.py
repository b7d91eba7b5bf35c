"""The desk's JSON API (``/api``; OpenAPI at ``/docs``). Same rules as the pages: viewers read,
analysts work alerts, admins also manage users; tokens are per user and revocable."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from desk import auth, params, queue, stats, work
from desk.access import Admin, Analyst, Viewer, do_work
from desk.params import INT_MAX, NamePath, TxPath, Version, VersionPath, WholePath
from schemas.events import ID_PATTERN, TransactionId
from store.settings import maturity

router = APIRouter(prefix="/api", tags=["api"])


def engine_of(request: Request) -> Any:
    return request.app.state.engine


@router.get("/me")
def me(who: Viewer) -> dict[str, Any]:
    return {"name": who.user.name, "role": who.user.role, "via": who.via}


@router.get("/alerts")
def list_alerts(
    request: Request,
    who: Viewer,
    status: str = Query("open", description="open, claimed, closed or all"),
    order: str = Query("newest", description="newest or score"),
    min_score: str | None = None,
    max_score: str | None = None,
    min_amount: str | None = None,
    max_amount: str | None = None,
    since: str | None = Query(None, description="event time, ISO, inclusive"),
    until: str | None = Query(None, description="event time, ISO, exclusive"),
    model_version: str | None = None,
    assignee: str | None = None,
    label: str | None = Query(
        None, description="the transaction's current label: fraud, genuine or none"),
    limit: str | None = Query(None, description=f"1..{queue.MAX_PAGE}, default 50"),
    cursor: str | None = Query(None, description="next_cursor of the last page"),
) -> dict[str, Any]:
    """One page of the queue; pass ``next_cursor`` back as ``cursor`` for the next. Each item
    carries its transaction's current label (``label``, ``label_source``,
    ``label_observed_at``; None when unlabelled)."""
    page = queue.list_queue(engine_of(request), queue.parse_filter(request.query_params))
    return {"items": page.rows, "next_cursor": page.next_cursor}


@router.get("/alerts/{model_version}/{transaction_id:path}")
def get_alert(
    request: Request, model_version: VersionPath, transaction_id: TxPath, who: Viewer
) -> dict[str, Any]:
    """An alert, its explanation, its transaction's labels and decisions, its audit trail."""
    found = queue.alert_detail(engine_of(request), transaction_id, model_version)
    if found is None:
        raise HTTPException(404, f"no alert {transaction_id!r} of model {model_version}")
    return found


class WorkBody(BaseModel):
    assignee: str | None = Field(None, max_length=64)
    disposition: work.Disposition | None = None
    note: str | None = None  # length checked by the work rules (a clear 400)
    revision: int | None = Field(
        None, ge=0, le=INT_MAX, description="refuse (409) if the alert changed since"
    )


class AlertRef(BaseModel):
    transaction_id: TransactionId
    model_version: Version


class BulkBody(WorkBody):
    action: Literal["claim", "release", "assign", "disposition"] = "disposition"
    alerts: list[AlertRef] = Field(min_length=1, max_length=work.MAX_BULK)


@router.post("/alerts/bulk")
def bulk(request: Request, body: BulkBody, who: Analyst) -> dict[str, Any]:
    """The same action on many alerts, all or nothing (one conflict → 409, nothing written)."""
    keys = [work.AlertKey(a.transaction_id, a.model_version) for a in body.alerts]
    options = body.model_dump(exclude={"alerts", "action"})
    return {"alerts": do_work(request, keys, body.action, who.user, **options)}


@router.post("/alerts/{model_version}/{transaction_id:path}/{action}")
def act(
    request: Request,
    model_version: VersionPath,
    transaction_id: TxPath,
    action: Literal["claim", "release", "assign", "disposition"],
    who: Analyst,
    body: WorkBody | None = None,
) -> dict[str, Any]:
    """claim / release / assign (``assignee``) / disposition (``disposition``, ``note``)."""
    options = (body or WorkBody()).model_dump()
    done = do_work(
        request, [work.AlertKey(transaction_id, model_version)], action, who.user, **options
    )
    return done[0]


@router.get("/dashboard")
def dashboard(
    request: Request,
    who: Viewer,
    mature_after: str | None = Query(
        None, description="label window, e.g. 6h; default: the desk's (`desk serve "
        "--mature-after`, else $FRAUDSTREAM_MATURE_AFTER), the one `counts` uses"),
) -> dict[str, Any]:
    """Every dashboard figure; the matured counts and the card precision per day (CP@k for the
    desk's capacity k, `card_precision`) say which label window they used."""
    mature = request.app.state.maturity
    if mature_after is not None:
        params.duration("mature_after", mature_after)  # a 400 naming it when malformed
        mature = maturity(mature_after, flag_name="mature_after")
    return stats.dashboard(engine_of(request), mature, request.app.state.capacity)


class TokenBody(BaseModel):
    name: str = Field("api", min_length=1, max_length=64, pattern=ID_PATTERN)


@router.post("/tokens")
def new_token(request: Request, body: TokenBody, who: Viewer) -> dict[str, Any]:
    """A bearer token for yourself (shown once; only its hash is stored)."""
    token_id, token = auth.add_token(engine_of(request), who.user.name, body.name)
    work.record(engine_of(request), who.user.name, "token_add", {"token_id": token_id})
    return {"id": token_id, "token": token}


@router.delete("/tokens/{token_id}")
def revoke(request: Request, token_id: WholePath, who: Viewer) -> dict[str, Any]:
    """Revoke one of your tokens (an admin: anyone's)."""
    if not auth.revoke_token(engine_of(request), token_id, owner=who.user):
        raise HTTPException(404, f"no live token {token_id} of yours")
    work.record(engine_of(request), who.user.name, "token_revoke", {"token_id": token_id})
    return {"revoked": token_id}


@router.get("/users")
def users(request: Request, who: Admin) -> list[dict[str, Any]]:
    return auth.list_users(engine_of(request))


class UserBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: auth.Role


@router.post("/users")
def add_user(request: Request, body: UserBody, who: Admin) -> dict[str, Any]:
    """Create a user; the one-time password is in the answer (and nowhere else)."""
    try:
        password = auth.add_user(engine_of(request), body.name, body.role)
    except auth.DeskError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 400, str(exc)) from None
    work.record(
        engine_of(request), who.user.name, "user_add", {"name": body.name, "role": body.role}
    )
    return {"name": body.name, "role": body.role, "password": password}


class UserChange(BaseModel):
    role: auth.Role | None = None
    disabled: bool | None = None
    reset_password: bool = Field(False, description="answer with a new one-time password")


@router.patch("/users/{name}")
def change_user(
    request: Request, name: NamePath, body: UserChange, who: Admin
) -> dict[str, Any]:
    """A role change, a disable and a password reset end the user's sessions and tokens."""
    try:
        password = auth.set_user(
            engine_of(request),
            name,
            role=body.role,
            disabled=body.disabled,
            reset_password=body.reset_password,
        )
    except auth.DeskError as exc:
        raise HTTPException(404, str(exc)) from None
    change = {"name": name, **body.model_dump(exclude_none=True, exclude_defaults=True)}
    work.record(engine_of(request), who.user.name, "user_change", change)
    return change if password is None else {**change, "password": password}
