"""The card queue's JSON API (``/api/cases``): list cases (highest score first, keyset
pages), one case with its alerts, and claim / release / assign / disposition of a case, one or
in bulk — the alert API's rules (:mod:`desk.case_work`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from desk import cases, work
from desk.access import Analyst, Viewer
from desk.case_work import CaseRef, act_on_cases
from desk.params import INT_MAX, WholePath
from desk.queue import MAX_PAGE
from schemas.events import TransactionId

router = APIRouter(prefix="/api", tags=["cases"])
CaseAction = Literal["claim", "release", "assign", "disposition"]


def do_case_work(request: Request, refs: list[CaseRef], action: CaseAction, user: Any,
                 **options: Any) -> list[dict[str, Any]]:
    """:func:`desk.case_work.act_on_cases` on the app's database, counted in the metrics."""
    done = act_on_cases(request.app.state.engine, refs, action, user, **options)
    request.app.state.metrics.changes.labels(f"case_{action}").inc(len(done))
    return done


@router.get("/cases")
def list_cases(
    request: Request,
    who: Viewer,
    status: str = Query("open", description="open, claimed, closed or all"),
    assignee: str | None = None,
    limit: str | None = Query(None, description=f"1..{MAX_PAGE}, default 50"),
    cursor: str | None = Query(None, description="next_cursor of the last page"),
) -> dict[str, Any]:
    """One page of the card queue, highest score first: each case is one card's alerts
    (``n_alerts``, ``amount`` at risk, ``max_score``, ``waited_s``); pass ``next_cursor`` back
    as ``cursor`` for the next page."""
    page = cases.list_cases(request.app.state.engine, cases.parse_case_filter(request.query_params))
    return {"items": page.rows, "next_cursor": page.next_cursor}


@router.get("/cases/{case_id}")
def get_case(request: Request, case_id: WholePath, who: Viewer) -> dict[str, Any]:
    """A case, its alerts (each with its transaction's current label) and its audit trail."""
    found = cases.case_detail(request.app.state.engine, case_id)
    if found is None:
        raise HTTPException(404, f"no case {case_id}")
    return found


class CaseBody(BaseModel):
    assignee: str | None = Field(None, max_length=64)
    disposition: work.Disposition | None = None
    note: str | None = None  # length checked by the work rules (a clear 400)
    revision: int | None = Field(None, ge=0, le=INT_MAX, description=(
        "the case's revision you looked at: a change to a case changed since is a 409; "
        "required by a disposition"))
    transaction_ids: list[TransactionId] | None = Field(
        None, max_length=work.MAX_BULK, description=(
            "disposition: the transactions to label with it (default: every open alert of the "
            "case); the other open alerts are closed inconclusive"))


class CaseRefBody(BaseModel):
    id: int = Field(ge=1, le=INT_MAX)
    revision: int | None = Field(None, ge=0, le=INT_MAX)


class CaseBulkBody(BaseModel):
    action: CaseAction = "disposition"
    cases: list[CaseRefBody] = Field(min_length=1, max_length=work.MAX_BULK)
    assignee: str | None = Field(None, max_length=64)
    disposition: work.Disposition | None = None
    note: str | None = None


@router.post("/cases/bulk")
def bulk(request: Request, body: CaseBulkBody, who: Analyst) -> dict[str, Any]:
    """The same action on many cases, all or nothing (a disposition labels every open alert of
    each case; each needs its ``revision``)."""
    refs = [CaseRef(c.id, c.revision) for c in body.cases]
    options = body.model_dump(exclude={"cases", "action"})
    return {"cases": do_case_work(request, refs, body.action, who.user, **options)}


@router.post("/cases/{case_id}/{action}")
def act(request: Request, case_id: WholePath, action: CaseAction, who: Analyst,
        body: CaseBody | None = None) -> dict[str, Any]:
    """claim / release / assign (``assignee``) / disposition (``disposition``, ``note``,
    ``revision``, ``transaction_ids``)."""
    b = body or CaseBody()
    done = do_case_work(request, [CaseRef(case_id, b.revision)], action, who.user,
                        marked=b.transaction_ids, assignee=b.assignee,
                        disposition=b.disposition, note=b.note)
    return done[0]
