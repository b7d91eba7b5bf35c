"""What the desk shows about the card behind a keyed alert (``card_panel.html``, the alert
detail API's ``card``): the card's transactions around the alert (time, amount, terminal, score,
flagged, label), its windows next to their usual level and the terminal's delayed windows — from
the feature vector stored with the alert, what the model saw — and that vector in words
(:mod:`desk.keyed_explain`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, case, func, select

from desk.keyed_explain import UNUSUAL_RATIO, rest_contributed_nothing, windows, worded
from schemas.behaviour import DAY_US, BehaviourSpec
from schemas.errors import FraudstreamError
from schemas.times import from_micros
from store.tables import alerts, decisions, keyed_transactions
from store.truth import latest_label

#: Transactions of the card shown before (the alerted one included) and after the alert.
BEFORE, AFTER = 20, 10
#: The terminal's recent activity (days before the transaction, from the store).
RECENT_DAYS = (1, 7)


def keyed_spec(training: Mapping[str, Any] | None) -> BehaviourSpec | None:
    """The behaviour spec a keyed model was trained with (its ``training`` record), None for a
    ULB (v1) model or a record without a readable spec."""
    data = (training or {}).get("behaviour_spec")
    if not isinstance(data, Mapping):
        return None
    try:
        return BehaviourSpec.from_dict(data)
    except (FraudstreamError, KeyError, TypeError):
        return None


def _when(time_us: int) -> datetime:
    return from_micros(time_us)


def card_history(engine: Engine, transaction_id: str,
                 model_version: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The keyed transaction (``customer_id``, ``terminal_id``, ``time_us``, ``amount``; None
    when it was not a keyed one) and up to :data:`BEFORE` of its card's transactions up to it
    and :data:`AFTER` after it, oldest first, each with ``event_time``, ``amount``,
    ``terminal_id``, the model's ``score``/``flagged`` (None when not logged), ``alerted``,
    ``label`` (fraud/genuine/None, its ``label_source``) and ``current`` (the alerted one)."""
    k = keyed_transactions.c
    with engine.connect() as conn:
        anchor = conn.execute(select(k.customer_id, k.terminal_id, k.time_us, k.amount)
                              .where(k.transaction_id == transaction_id)).first()
        if anchor is None or anchor.customer_id is None:
            return None, []
        d, a = decisions.c, alerts.c
        columns = (k.transaction_id, k.time_us, k.amount, k.terminal_id, d.score, d.flagged,
                   a.transaction_id.label("alerted"),
                   latest_label(k.transaction_id, "is_fraud").label("is_fraud"),
                   latest_label(k.transaction_id, "source").label("label_source"))
        joined = keyed_transactions.outerjoin(decisions, and_(
            d.transaction_id == k.transaction_id, d.model_version == model_version)).outerjoin(
            alerts, and_(a.transaction_id == k.transaction_id, a.model_version == model_version))
        base = select(*columns).select_from(joined).where(k.customer_id == anchor.customer_id)
        before = conn.execute(base.where(k.time_us <= anchor.time_us)
                              .order_by(k.time_us.desc(), k.transaction_id.desc())
                              .limit(BEFORE)).all()
        after = conn.execute(base.where(k.time_us > anchor.time_us)
                             .order_by(k.time_us, k.transaction_id).limit(AFTER)).all()
    rows = []
    for r in [*reversed(before), *after]:
        flag = r.is_fraud
        rows.append({"transaction_id": r.transaction_id, "event_time": _when(r.time_us),
                     "amount": r.amount, "terminal_id": r.terminal_id, "score": r.score,
                     "flagged": r.flagged if r.flagged is not None else (
                         True if r.alerted is not None else None),
                     "alerted": r.alerted is not None,
                     "label": None if flag is None else ("fraud" if flag else "genuine"),
                     "label_source": r.label_source,
                     "current": r.transaction_id == transaction_id})
    return dict(anchor._mapping), rows


def terminal_recent(engine: Engine, terminal_id: str, time_us: int,
                    model_version: int) -> list[dict[str, Any]]:
    """The terminal's activity in the :data:`RECENT_DAYS` up to the transaction (its time
    included), as the store holds it now (not a model input: the model reads terminals
    ``D`` days late): ``transactions``, distinct ``cards``, ``flagged`` by the model,
    ``fraud`` (current label fraud)."""
    k, d = keyed_transactions.c, decisions.c
    fraud = latest_label(k.transaction_id, "is_fraud")
    query = select(func.count(), func.count(func.distinct(k.customer_id)),
                   func.coalesce(func.sum(case((d.flagged.is_(True), 1), else_=0)), 0),
                   func.coalesce(func.sum(case((fraud == 1, 1), else_=0)), 0)).select_from(
        keyed_transactions.outerjoin(decisions, and_(d.transaction_id == k.transaction_id,
                                                     d.model_version == model_version)))
    out = []
    with engine.connect() as conn:
        for days in RECENT_DAYS:
            n, cards, flagged, frauds = conn.execute(query.where(
                k.terminal_id == terminal_id, k.time_us > time_us - days * DAY_US,
                k.time_us <= time_us)).one()
            out.append({"days": days, "transactions": int(n), "cards": int(cards),
                        "flagged": int(flagged), "fraud": int(frauds)})
    return out


def card_view(engine: Engine, alert: Mapping[str, Any],
              spec: BehaviourSpec) -> dict[str, Any]:
    """Everything the card panel shows for a keyed ``alert`` (a row of ``alerts``) of a model
    trained with ``spec``. Windows and words come from ``alert["feature_values"]``."""
    anchor, history = card_history(engine, alert["transaction_id"], alert["model_version"])
    values = alert.get("feature_values") or {}
    card_days = spec.customer_windows_days
    words = worded(values, alert.get("explanation"), spec)
    return {
        "card_id": anchor["customer_id"] if anchor else None,
        "terminal_id": anchor["terminal_id"] if anchor else None,
        "history": history,
        "card_windows": windows(values, "customer"),
        "terminal_windows": windows(values, "terminal"),
        "terminal_recent": terminal_recent(engine, anchor["terminal_id"], anchor["time_us"],
                                           alert["model_version"]) if anchor else [],
        "words": words,
        "top_contribution": max((abs(w["contribution"]) for w in words
                                 if w["contribution"] is not None), default=1.0) or 1.0,
        "rest_contributed_nothing": rest_contributed_nothing(alert.get("explanation")),
        "recorded": bool(values),
        "delay_days": spec.delay_days,
        "usual_rule": (
            f"usual = the card's {max(card_days)}-day window scaled to the shorter window "
            f"(its per-day rate × the window's days; for mean amounts, its {max(card_days)}-day"
            f" mean), from the same vector; the {max(card_days)}-day window is the baseline. "
            f"Marked when at least {UNUSUAL_RATIO:g}× the usual level.") if card_days else "",
        "terminal_rule": (
            f"Terminal windows end {spec.delay_days} days before the transaction: a fraud is "
            f"known only once labelled, about {spec.delay_days} days after it happened, so the "
            f"model reads a terminal's risk {spec.delay_days} days late. A fraud counts once "
            f"its label was observed before the transaction."),
    }
