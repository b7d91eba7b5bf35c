"""The desk's server-rendered pages (Jinja2 + vendored htmx): login, queue, alert detail,
dashboard. Forms post back with the session's CSRF token and are answered with a redirect
(post/redirect/get), so the browser's back button and reloads never resubmit a verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from desk import auth, charts, params, queue, stats, work
from desk.access import COOKIE, Principal, check_csrf, do_work, principal
from desk.params import TxPath, VersionPath

router = APIRouter(include_in_schema=False)
STATUS_LABELS = {
    "confirmed_fraud": "confirmed fraud",
    "false_positive": "false positive",
    "inconclusive": "inconclusive",
    "chargeback": "confirmed by chargeback",  # settled by the system (store.settle)
    "settled": "all alerts settled elsewhere",  # a case closed by the system (store.settle)
}


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, name, {"labels": STATUS_LABELS, **context}, status_code=status
    )


def _alert_url(model_version: int, transaction_id: str) -> str:
    return f"/alerts/{model_version}/{quote(transaction_id, safe='')}"


def page_user(request: Request) -> Principal | Response:
    who = principal(request)
    if who is None or who.via != "session":
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return who


async def page_form(request: Request) -> tuple[Principal, FormData] | Response:
    """A page form's sender (logged in, the session's CSRF token checked) and its fields; or
    the login redirect."""
    who = page_user(request)
    if isinstance(who, Response):
        return who
    await check_csrf(request, who)
    return who, await request.form()


def bulk_done(form: FormData, home: str, run: Callable[[], str]) -> Response:
    """Run a page's bulk action (``run`` says what it did) and redirect to the form's ``back``
    page under ``home`` with that message — or with why nothing changed."""
    try:
        msg = run()
    except work.WorkError as exc:
        msg = f"nothing changed: {exc.message}"
    except params.BadParam as exc:
        msg = f"nothing changed: {exc}"
    back = str(form.get("back", home))
    back = back if back.startswith(home) else home
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}{urlencode({'msg': msg})}", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/queue", error: str = "") -> Response:
    return render(request, "login.html", {"next": next, "error": error, "user": None})


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:256]
    target = str(form.get("next", "/queue"))
    target = target if target.startswith("/") and not target.startswith("//") else "/queue"
    limiter: auth.LoginLimiter = request.app.state.limiter
    keys = [f"user:{name}", f"ip:{request.client.host if request.client else '-'}"]
    now = time.monotonic()
    if limiter.blocked(keys, now):
        return render(
            request,
            "login.html",
            {"next": target, "user": None, "error": "Too many failed logins: wait a few minutes."},
            status=429,
        )
    user = auth.authenticate(request.app.state.engine, name, password)
    if user is None:
        limiter.failed(keys, now)
        return render(
            request,
            "login.html",
            {"next": target, "user": None, "error": "Wrong user name or password."},
            status=401,
        )
    limiter.succeeded(keys)
    cookie, _ = request.app.state.sessions.issue(user)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=request.app.state.sessions.max_age_s,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = principal(request)
    if who is not None:
        await check_csrf(request, who)
        if who.via == "session":
            auth.end_sessions(request.app.state.engine, who.user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue_page(request: Request, msg: str = "") -> Response:
    who = page_user(request)
    if isinstance(who, Response):
        return who
    try:
        f = queue.parse_filter(request.query_params)
    except queue.BadFilter as exc:
        f, error = queue.QueueFilter(), str(exc)
        return render(request, "queue.html", _queue_context(request, who, f, error, msg), 400)
    return render(request, "queue.html", _queue_context(request, who, f, "", msg))


def _queue_context(
    request: Request, who: Principal, f: queue.QueueFilter, error: str, msg: str
) -> dict[str, Any]:
    page = queue.list_queue(request.app.state.engine, f)
    newest = max((r["time_s"] for r in page.rows), default=0.0)
    return {
        "user": who.user,
        "csrf": who.csrf,
        "f": f,
        "page": page,
        "error": error,
        "msg": msg,
        "alert_url": _alert_url,
        "statuses": queue.STATUSES,
        "next_url": "/queue?" + urlencode(f.query_string(cursor=page.next_cursor))
        if page.next_cursor
        else None,
        "first_url": "/queue?" + urlencode(f.query_string(cursor=None)),
        "poll_url": "/queue/new?" + urlencode({"after": newest, "status": f.status or "all"})
        if f.cursor is None
        else None,
    }


@router.get("/queue/new")
def new_alerts(request: Request, after: str = "0", status: str = "open") -> Response:
    """The queue polls this (htmx, every 10 s): a link saying how many newer alerts there are."""
    if principal(request) is None:
        return HTMLResponse("", status_code=401)
    since = params.number("after", after, -1e15, 1e15) or 0.0
    wanted = params.choice("status", status, (*queue.STATUSES, "all"))
    n = queue.newer_count(
        request.app.state.engine, since, None if wanted == "all" else wanted  # type: ignore[arg-type]
    )
    body = (
        (
            f'<a class="new-alerts" href="/queue">{n}{"+" if n >= 100 else ""} new '
            f"alert{'s' if n != 1 else ''} — show</a>"
        )
        if n
        else ""
    )
    return HTMLResponse(body)


@router.post("/queue/bulk")
async def bulk(request: Request) -> Response:
    sent = await page_form(request)
    if isinstance(sent, Response):
        return sent
    who, form = sent

    def run() -> str:
        keys = []
        for value in form.getlist("sel"):
            version, _, tx = str(value).partition(":")
            keys.append(work.AlertKey(tx, params.whole("sel", version) or 0))
        done = do_work(
            request,
            keys,
            "disposition",
            who.user,
            disposition=str(form.get("disposition", "")),
            note=str(form.get("note", "")) or None,
        )
        return f"{len(done)} alert{'s' if len(done) != 1 else ''} closed"

    return bulk_done(form, "/queue", run)


def _missing(request: Request, who: Any, transaction_id: str, model_version: int) -> Response:
    """The 404 page of an alert that does not exist."""
    what = f"alert {transaction_id} of model {model_version}"
    return render(request, "missing.html", {"user": who.user, "csrf": who.csrf, "what": what},
                   404)


def _detail_page(request: Request, who: Any, transaction_id: str, model_version: int, *,
                 msg: str = "", error: str | None = None, status: int = 200) -> Response:
    """The alert's detail page (404 page when it does not exist); ``error`` shows why an action
    was refused (with its 4xx ``status``), ``msg`` what an action did."""
    found = queue.alert_detail(request.app.state.engine, transaction_id, model_version)
    if found is None:
        return _missing(request, who, transaction_id, model_version)
    top = (
        max((abs(f["contribution"]) for f in found["alert"]["explanation"] or []), default=1.0)
        or 1.0
    )
    context = {
        "user": who.user,
        "csrf": who.csrf,
        "d": found,
        "a": found["alert"],
        "msg": msg,
        "top": top,
        "dispositions": work.DISPOSITIONS,
        "max_note": work.MAX_NOTE,
        "action_url": _alert_url(model_version, transaction_id),
    }
    if error is not None:
        context["error"] = error
    return render(request, "detail.html", context, status)


@router.get("/alerts/{model_version}/{transaction_id:path}")
def detail(
    request: Request, model_version: VersionPath, transaction_id: TxPath, msg: str = ""
) -> Response:
    who = page_user(request)
    if isinstance(who, Response):
        return who
    return _detail_page(request, who, transaction_id, model_version, msg=msg)


@router.post("/alerts/{model_version}/{transaction_id:path}/{action}")
async def act(
    request: Request, model_version: VersionPath, transaction_id: TxPath, action: str
) -> Response:
    sent = await page_form(request)
    if isinstance(sent, Response):
        return sent
    who, form = sent
    try:
        if action not in ("claim", "release", "assign", "disposition"):
            raise work.WorkError(404, f"unknown action {action[:40]!r}")
        try:
            revision = params.whole("revision", str(form.get("revision", "")), 0)
        except params.BadParam as exc:
            raise work.WorkError(400, str(exc)) from None
        do_work(
            request,
            [work.AlertKey(transaction_id, model_version)],
            action,
            who.user,  # type: ignore[arg-type]
            assignee=str(form.get("assignee", "")) or None,
            disposition=str(form.get("disposition", "")) or None,
            note=str(form.get("note", "")) or None,
            revision=revision,
        )
    except work.WorkError as exc:
        return _detail_page(request, who, transaction_id, model_version, error=exc.message,
                            status=exc.status)
    return RedirectResponse(_alert_url(model_version, transaction_id), status_code=303)


@router.get("/dashboard")
def dashboard(request: Request) -> Response:
    who = page_user(request)
    if isinstance(who, Response):
        return who
    data = stats.dashboard(request.app.state.engine, request.app.state.maturity,
                           request.app.state.capacity)
    rows = data["counts"]["rows"]
    figures = {
        "per_hour": charts.bars(
            [(f"{int(h // 3600) % 24:02d}h", n) for h, n in data["alerts_per_hour"]],
            title="Alerts per hour (event time, last 48 h)",
        ),
        "age": charts.bars(
            data["queue"]["age"], title="Open and claimed alerts by age", css="bar age"
        ),
        "precision": charts.bars(
            [(p["day"][5:], p["precision"]) for p in data["precision"]],
            title="Disposition precision per day",
            top=1.0,
            css="bar precision",
            values=True,
        ),
        "counts": charts.grouped_bars(
            [
                (f"v{r['model_version']}", [("tp", r["tp"]), ("fp", r["fp"]), ("fn", r["fn"])])
                for r in rows
            ],
            title="Matured confusion counts per model version",
        ),
        "scores": charts.bars(
            data["scores"], title="Score distribution of alerts", css="bar score"
        ),
        "card_precision": charts.bars(
            [(d["day"][5:], d["precision"]) for d in data["card_precision"]["days"]
             if d["precision"] is not None],
            title=f"Card precision CP@{data['card_precision']['k']} per mature day",
            top=1.0,
            css="bar precision",
            values=True,
        ),
    }
    return render(
        request,
        "dashboard.html",
        {"user": who.user, "csrf": who.csrf, "data": data, "charts": figures, "rows": rows},
    )
