"""The keyed scorer's set-based case attach (``store.cases.attach_to_cases``) on real SQLite and
PostgreSQL: one batch with alerts for many cards — cards with an open case, a claimed one, only
a closed one, none, a chargeback that came first — leaves every case as attaching the cards one
by one would, and a re-delivered batch changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from desk.auth import User
from desk.case_work import CaseRef, act_on_cases
from labels.service import write_labels
from store.db import connect
from store.tables import alerts, cases
from tests.desk_fixtures import label, score_cards, seed

FIRST_S, SECOND_S = 86_400.0, 200_000.0


def case_rows(engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.id: dict(r._mapping) for r in conn.execute(select(cases))}


def alert_cases(engine) -> dict[str, int | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(alerts.c.transaction_id, alerts.c.case_id)).all())


def test_one_batch_of_many_cards_attaches_as_card_by_card(db_url):
    engine = connect(db_url)
    seed(engine, n_alerts=0, n_genuine=0)  # the model version
    score_cards(engine, [(f"a-{i:02d}", f"card-{i:02d}", 0.6 + i / 100, 1.5 * (i + 1))
                         for i in range(30)], start_s=FIRST_S)
    first_case = alert_cases(engine)
    assert len(set(first_case.values())) == 30
    of_card = {f"card-{i:02d}": first_case[f"a-{i:02d}"] for i in range(30)}
    ann = User(0, "ann", "analyst")
    act_on_cases(engine, [CaseRef(of_card[f"card-{i:02d}"], 0) for i in range(10)],
                 "disposition", ann, disposition="false_positive")
    act_on_cases(engine, [CaseRef(of_card[f"card-{i:02d}"], None) for i in range(10, 15)],
                 "claim", ann)
    with engine.begin() as conn:  # chargebacks before their alerts: card-40's only, one of 41's
        write_labels(conn, [label("b-40-0", True, "chargeback", 1),
                            label("b-41-0", True, "chargeback", 1)])
    before = case_rows(engine)

    # one batch: cards 0-41, 1-3 alerts each, interleaved; plus a re-sent alert of batch one
    per_card = {i: 1 + i % 3 for i in range(42)} | {40: 1}
    batch = [(f"b-{i:02d}-{j}", f"card-{i:02d}", 0.51 + ((7 * i + 3 * j) % 47) / 100,
              0.25 * (1 + (5 * i + j) % 13))
             for j in range(3) for i in range(42) if j < per_card[i]]
    batch.insert(17, ("a-20", "card-20", 0.99, 1000.0))
    score_cards(engine, batch, start_s=SECOND_S)

    after = case_rows(engine)
    attached = alert_cases(engine)
    assert attached["a-20"] == first_case["a-20"]  # attached once, not again
    new_ids = sorted(set(after) - set(before))
    for i in range(42):
        card = f"card-{i:02d}"
        mine = [(SECOND_S + 60.0 * k, tx, score, amount)
                for k, (tx, c, score, amount) in enumerate(batch) if c == card and tx != "a-20"]
        assert len(mine) == per_card[i]
        old = before.get(of_card.get(card, -1))
        joins = old is not None and old["status"] != "closed"
        case_id = attached[mine[0][1]]
        assert {attached[tx] for _, tx, _, _ in mine} == {case_id}, card
        got = after[case_id]
        top, total = max(m[2] for m in mine), sum(m[3] for m in mine)
        first, last = min(m[0] for m in mine), max(m[0] for m in mine)
        if joins:
            assert case_id == old["id"], card
            expected = {**old, "max_score": max(old["max_score"], top),
                        "n_alerts": old["n_alerts"] + len(mine), "amount": old["amount"] + total,
                        "first_time_s": min(old["first_time_s"], first),
                        "last_time_s": max(old["last_time_s"], last),
                        "revision": old["revision"] + 1}
            assert {k: got[k] for k in expected if k != "updated_at"} == {
                k: v for k, v in expected.items() if k != "updated_at"}, card
            assert got["updated_at"] != old["updated_at"]
        else:
            assert case_id in new_ids, card
            assert (got["card_id"], got["max_score"], got["n_alerts"], got["amount"],
                    got["first_time_s"], got["last_time_s"]) == (card, top, len(mine), total,
                                                                 first, last)
            want = ("closed", "settled", 1) if i == 40 else ("open", None, 0)
            assert (got["status"], got["disposition"], got["revision"]) == want, card
    assert len(new_ids) == 10 + 12  # closed cards 0-9 reopen, 30-41 are new
    for case_id, old in before.items():  # the closed cases are untouched
        if old["status"] == "closed":
            assert after[case_id] == old
    assert after[attached["b-41-0"]]["status"] == "open"  # b-41-1 still needs a look

    score_cards(engine, batch, start_s=SECOND_S)  # re-delivered: nothing changes
    assert case_rows(engine) == after and alert_cases(engine) == attached
    engine.dispose()
