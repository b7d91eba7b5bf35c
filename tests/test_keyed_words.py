"""Pure: a keyed alert's feature vector in words (desk.keyed_explain) and card precision per day
(desk.card_precision, on the trainer's card ranking)."""

from __future__ import annotations

from datetime import date

import pytest

from desk.card_precision import card_precision_days, mean_precision
from desk.keyed_explain import (
    parse_window,
    rest_contributed_nothing,
    sentence,
    usual,
    windows,
    worded,
)
from models.evaluation import top_k_cards
from schemas.behaviour import BehaviourSpec

SPEC = BehaviourSpec()
VECTOR = {
    "amount": 312.5, "weekend": 1.0, "night": 0.0,
    "customer_count_1d": 9.0, "customer_mean_amount_1d": 250.0,
    "customer_count_7d": 14.0, "customer_mean_amount_7d": 120.0,
    "customer_count_30d": 36.0, "customer_mean_amount_30d": 57.3,
    "terminal_count_1d": 0.0, "terminal_risk_1d": 0.0,
    "terminal_count_7d": 120.0, "terminal_risk_7d": 0.3083,
    "terminal_count_30d": 400.0, "terminal_risk_30d": 0.1,
}


def test_every_behaviour_feature_in_words():
    assert set(VECTOR) == set(SPEC.input_names())  # the one implementation's names
    said = {n: sentence(n, VECTOR, SPEC) for n in VECTOR}
    assert said["customer_count_1d"] == "card: 9 transactions in the last 24 h (usual 1.2)"
    assert said["customer_count_7d"] == "card: 14 transactions in the last 7 days (usual 8.4)"
    assert said["customer_count_30d"] == ("card: 36 transactions in the last 30 days "
                                          "(the baseline, 1.2 a day)")
    assert said["customer_mean_amount_1d"] == ("card: mean amount 250.00 over the last 24 h "
                                               "(usual 57.30)")
    assert said["terminal_risk_7d"] == ("terminal: 31 % of its 120 transactions 7–14 days ago "
                                        "were known fraud (fraud is known 7 days after)")
    assert said["terminal_count_30d"] == "terminal: 400 transactions 7–37 days ago"
    assert said["terminal_risk_1d"] == "terminal: no transactions 7–8 days ago, so no known fraud"
    assert said["amount"] == "amount: 312.50"
    assert said["weekend"].startswith("on a weekend") and said["night"].startswith("in the daytime")
    later = BehaviourSpec(delay_days=3, night_end_hour=5)
    assert sentence("terminal_risk_7d", VECTOR, later).endswith(
        "3–10 days ago were known fraud (fraud is known 3 days after)")
    assert sentence("night", {"night": 1.0}, later) == "at night (before 05:00 UTC)"
    assert sentence("v17", {"v17": 2.0}, SPEC) == "v17: 2"


def test_usual_levels_and_the_order_of_the_words():
    assert usual("customer_count_1d", VECTOR) == pytest.approx(1.2)
    assert usual("customer_mean_amount_7d", VECTOR) == 57.3
    assert usual("customer_count_30d", VECTOR) is None  # the baseline has no usual level
    assert usual("terminal_count_7d", VECTOR) is None and usual("amount", VECTOR) is None
    assert parse_window("customer_mean_amount_30d").measure == "mean_amount"
    assert parse_window("customer_count_x") is None
    explanation = [{"feature": "terminal_risk_7d", "contribution": 1.9},
                   {"feature": "customer_count_1d", "contribution": 1.1},
                   {"feature": "amount", "contribution": -0.4}]
    words = worded(VECTOR, explanation, SPEC)
    assert [w["feature"] for w in words[:3]] == ["terminal_risk_7d", "customer_count_1d",
                                                 "amount"]
    assert [w["contribution"] for w in words[:3]] == [1.9, 1.1, -0.4]
    assert len(words) == len(VECTOR) and all(w["contribution"] is None for w in words[3:])
    by = {w["feature"]: w for w in words}
    assert by["customer_count_1d"]["unusual"] and by["customer_count_1d"]["value"] == 9.0
    assert not by["customer_count_7d"]["unusual"]  # 14 < 2 × 8.4
    assert by["terminal_risk_7d"]["unusual"] and not by["terminal_risk_1d"]["unusual"]
    assert not rest_contributed_nothing(explanation)  # the rest may have contributed a little
    # a top-5 explanation naming features that contributed exactly zero: they are no reasons
    zeros = [*explanation, {"feature": "weekend", "contribution": 0.0},
             {"feature": "night", "contribution": -0.0}]
    zero_words = worded(VECTOR, zeros, SPEC)
    assert [w["feature"] for w in zero_words if w["contribution"] is not None] == [
        "terminal_risk_7d", "customer_count_1d", "amount"]
    assert {w["feature"]: w["contribution"] for w in zero_words}["weekend"] is None
    assert rest_contributed_nothing(zeros) and not rest_contributed_nothing(None)
    assert worded(None, explanation, SPEC) == [] and windows(None, "customer") == []
    card = windows(VECTOR, "customer")
    assert [(w["days"], w["count"], w["mean_amount"]) for w in card] == [
        (1, 9.0, 250.0), (7, 14.0, 120.0), (30, 36.0, 57.3)]
    assert card[0]["usual_count"] == pytest.approx(1.2) and card[2]["usual_count"] is None
    assert [w["risk"] for w in windows(VECTOR, "terminal")] == [0.0, 0.3083, 0.1]


def test_card_precision_per_day_counts_the_first_k_cards_once_mature():
    d1, d2, d3 = date(2018, 5, 1), date(2018, 5, 2), date(2018, 5, 3)
    scores = {d1: {"a": 0.9, "b": 0.8, "c": 0.3}, d2: {"a": 0.99, "b": 0.5, "c": 0.4},
              d3: {"c": 0.7}}
    alerts = {d1: 4, d2: 3, d3: 1}
    compromised = {(d1, "a"), (d1, "c"), (d2, "a"), (d2, "c"), (d3, "c")}
    days = card_precision_days(scores, alerts, compromised, 2, mature_through=d2)
    assert [(d.first, d.compromised, d.precision) for d in days] == [
        (("a", "b"), 1, 0.5), (("a", "b"), 1, 0.5), (("c",), 1, None)]  # d3 not mature yet
    assert [d.cards for d in days] == [3, 3, 1] and days[0].to_dict()["day"] == "2018-05-01"
    assert mean_precision(days) == 0.5
    one = card_precision_days(scores, alerts, compromised, 1, mature_through=d3)
    assert [d.precision for d in one] == [1.0, 1.0, 1.0]
    # fewer cards than the capacity: the unused capacity is not precision
    assert card_precision_days(scores, alerts, compromised, 4, d3)[2].precision == 0.25
    assert mean_precision(card_precision_days(scores, alerts, compromised, 2, None)) is None
    assert top_k_cards({"b": 0.5, "a": 0.5, "c": 0.9}, 2) == ["c", "a"]  # ties by card
    with pytest.raises(ValueError, match="capacity"):
        card_precision_days(scores, alerts, compromised, 0, None)
