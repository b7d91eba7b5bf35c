"""The card queue's pages: ``/cards`` (one row per case: a card's alerts, highest score first,
with a bulk close) and ``/cases/{id}`` (the case's alerts with a mark each, the work forms).
Forms carry the session's CSRF token and the case's revision, and answer with a redirect
(post/redirect/get) like the alert pages (:mod:`desk.pages`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from desk import cases, params, work
from desk.case_api import do_case_work
from desk.case_work import CaseRef
from desk.pages import bulk_done, page_form, page_user, render
from desk.params import WholePath
from desk.queue import STATUSES

router = APIRouter(include_in_schema=False)
ACTIONS = ("claim", "release", "assign", "disposition")


@router.get("/cards")
def cards_page(request: Request, msg: str = "") -> Response:
    who = page_user(request)
    if isinstance(who, Response):
        return who
    error, status = "", 200
    try:
        f = cases.parse_case_filter(request.query_params)
    except params.BadParam as exc:
        f, error, status = cases.CaseFilter(), str(exc), 400
    page = cases.list_cases(request.app.state.engine, f)
    context = {
        "user": who.user, "csrf": who.csrf, "f": f, "page": page, "error": error, "msg": msg,
        "statuses": STATUSES,
        "first_url": "/cards?" + urlencode(f.query_string(cursor=None)),
        "next_url": "/cards?" + urlencode(f.query_string(cursor=page.next_cursor))
        if page.next_cursor else None,
    }
    return render(request, "cards.html", context, status)


@router.post("/cards/bulk")
async def bulk(request: Request) -> Response:
    """Close (or claim) the selected cases: ``sel`` = ``id:revision`` as the page showed them."""
    sent = await page_form(request)
    if isinstance(sent, Response):
        return sent
    who, form = sent

    def run() -> str:
        refs = []
        for value in form.getlist("sel"):
            case_id, _, revision = str(value).partition(":")
            refs.append(CaseRef(params.whole("sel", case_id) or 0,
                                params.whole("sel", revision, 0)))
        action = params.choice("action", str(form.get("action", "disposition")), ACTIONS)
        done = do_case_work(request, refs, action, who.user,  # type: ignore[arg-type]
                            disposition=str(form.get("disposition", "")) or None,
                            note=str(form.get("note", "")) or None)
        verb = "closed" if action == "disposition" else f"{action}ed"
        return f"{len(done)} case{'s' if len(done) != 1 else ''} {verb}"

    return bulk_done(form, "/cards", run)


def _case_page(request: Request, who: Any, case_id: int, *, msg: str = "",
               error: str | None = None, status: int = 200) -> Response:
    found = cases.case_detail(request.app.state.engine, case_id)
    if found is None:
        return render(request, "missing.html",
                      {"user": who.user, "csrf": who.csrf, "what": f"case {case_id}"}, 404)
    context = {
        "user": who.user, "csrf": who.csrf, "d": found, "c": found["case"], "msg": msg,
        "card_id": found["case"]["card_id"], "dispositions": work.DISPOSITIONS,
        "max_note": work.MAX_NOTE, "action_url": f"/cases/{case_id}",
        "max_listed": cases.MAX_CASE_ALERTS,
    }
    if error is not None:
        context["error"] = error
    return render(request, "case.html", context, status)


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: WholePath, msg: str = "") -> Response:
    who = page_user(request)
    if isinstance(who, Response):
        return who
    return _case_page(request, who, case_id, msg=msg)


@router.post("/cases/{case_id}/{action}")
async def act(request: Request, case_id: WholePath, action: str) -> Response:
    sent = await page_form(request)
    if isinstance(sent, Response):
        return sent
    who, form = sent
    try:
        if action not in ACTIONS:
            raise work.WorkError(404, f"unknown action {action[:40]!r}")
        try:
            revision = params.whole("revision", str(form.get("revision", "")), 0)
        except params.BadParam as exc:
            raise work.WorkError(400, str(exc)) from None
        # the case page always sends its marks (``marks`` says so, even when none is ticked)
        marked = [str(v) for v in form.getlist("mark")] if form.get("marks") else None
        do_case_work(request, [CaseRef(case_id, revision)], action,  # type: ignore[arg-type]
                     who.user, marked=marked if action == "disposition" else None,
                     assignee=str(form.get("assignee", "")) or None,
                     disposition=str(form.get("disposition", "")) or None,
                     note=str(form.get("note", "")) or None)
    except work.WorkError as exc:
        return _case_page(request, who, case_id, error=exc.message, status=exc.status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
