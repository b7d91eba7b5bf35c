"""Pure scorer steps: decoding records into events/dead letters, scoring and counting."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from models.dense import DenseScorer
from schemas.events import MAX_EVENT_BYTES
from schemas.features import FeatureContract
from scorer.decode import decode_batch
from scorer.process import INLINE_LABEL, ScoringModel, score_batch, shadow_decisions


@dataclass
class Record:
    value: bytes | None
    offset: int = 0
    topic: str = "transactions"
    partition: int = 0
    key: bytes | None = None


def event(i=0, **overrides):
    base = {"schema_version": 1, "transaction_id": f"t-{i}", "time_s": float(i),
            **{f"v{k}": 0.1 * k for k in range(1, 29)}, "amount": 10.0, "is_fraud": 0}
    return {**base, **overrides}


def encode(obj):
    return json.dumps(obj).encode()


MALFORMED = {
    "not json": b"{not json",
    "empty": b"",
    "null value": None,
    "array": b"[1, 2, 3]",
    "wrong type": encode(event(v3="abc")),
    "missing field": encode({k: v for k, v in event().items() if k != "v9"}),
    "nan": encode(event(v4=float("nan"))),
    "infinity": b'{"schema_version": 1, "v1": Infinity}',
    "negative amount": encode(event(amount=-3.0)),
    "unknown version": encode(event(schema_version=99)),
    "oversized": encode(event(note="x" * MAX_EVENT_BYTES)),
    "bad label": encode(event(is_fraud=7)),
    "id not a string": encode(event(transaction_id=12)),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_each_malformed_kind_becomes_a_dead_letter_with_reason(kind):
    records = [Record(encode(event(1)), 0), Record(MALFORMED[kind], 1), Record(encode(event(2)), 2)]
    batch = decode_batch(records)
    assert [e["transaction_id"] for e in batch.events] == ["t-1", "t-2"]
    assert [r.offset for r in batch.records] == [0, 2]
    assert len(batch.dead) == 1 and batch.dead[0].record.offset == 1
    assert batch.dead[0].reason and "\n" not in batch.dead[0].reason


def test_reasons_name_the_problem():
    reasons = {k: decode_batch([Record(v)]).dead[0].reason for k, v in MALFORMED.items()}
    assert "amount" in reasons["negative amount"]
    assert "schema_version" in reasons["unknown version"]
    assert "v9" in reasons["missing field"]
    assert reasons["oversized"].startswith("oversized")
    assert "JSON" in reasons["not json"] or "json" in reasons["not json"]


def toy_model(threshold=0.5):
    # One hidden unit relu(V1); output = sigmoid(10 * relu(V1) - 5): flags V1 > 0.5.
    k1 = np.zeros((29, 1))
    k1[0, 0] = 1.0
    net = DenseScorer(kernels=(k1, np.array([[10.0]])), biases=(np.zeros(1), np.array([-5.0])))
    contract = FeatureContract(mean=(0.0,) * 29, scale=(1.0,) * 29)
    return ScoringModel(version=3, threshold=threshold, contract=contract, net=net)


def test_score_batch_flags_counts_and_builds_alerts():
    events = [event(0, v1=2.0, is_fraud=1), event(1, v1=-2.0, is_fraud=1),
              event(2, v1=1.0, is_fraud=0), event(3, v1=-1.0)]
    del events[3]["is_fraud"]
    records = [Record(encode(e), offset=10 + i, partition=2) for i, e in enumerate(events)]
    scored = score_batch(decode_batch(records), toy_model())
    assert scored.flagged.tolist() == [True, False, True, False]
    assert [d["flagged"] for d in scored.decision_rows] == [True, False, True, False]
    assert [d["source_offset"] for d in scored.decision_rows] == [10, 11, 12, 13]
    assert {d["model_version"] for d in scored.decision_rows} == {3}
    # Inline truths become labels (source replay); the unlabelled event has none.
    assert [(r["label_id"], r["is_fraud"], r["source"]) for r in scored.label_rows] == [
        (f"{INLINE_LABEL}:t-0", 1, "replay"), (f"{INLINE_LABEL}:t-1", 1, "replay"),
        (f"{INLINE_LABEL}:t-2", 0, "replay")]
    assert scored.label_rows[0]["observed_at"] == scored.decision_rows[0]["event_time"]
    assert [a.transaction_id for a in scored.alerts] == ["t-0", "t-2"]
    assert scored.alerts[0].source_offset == 10 and scored.alerts[0].source_partition == 2
    assert scored.alert_rows[0]["model_version"] == 3
    assert scored.scores[0] == pytest.approx(1 / (1 + np.exp(-15.0)))


def test_a_shadow_shares_the_batch_but_decides_with_its_own_version_and_threshold():
    events = [event(i, v1=v) for i, v in enumerate((2.0, 0.6, -1.0))]
    batch = decode_batch([Record(encode(e), offset=i) for i, e in enumerate(events)])
    raw = batch.raw_matrix()
    assert batch.raw_matrix() is raw and not raw.flags.writeable  # built once, shared, read-only
    production = score_batch(batch, toy_model(threshold=0.5))
    shadow = ScoringModel(**{**toy_model(threshold=0.9).__dict__, "version": 4})
    rows, flagged = shadow_decisions(batch, shadow)
    assert [r.keys() for r in rows] == [r.keys() for r in production.decision_rows]  # one COPY
    assert [r["flagged"] for r in production.decision_rows] == [True, True, False]
    assert [r["flagged"] for r in rows] == [True, False, False] and flagged == 1
    assert {(r["model_version"], r["threshold"]) for r in rows} == {(4, 0.9)}
    assert [r["score"] for r in rows] == production.scores.tolist()  # same net, same inputs
    batch.events.append(event(9, v1=3.0))  # a batch that grows is rebuilt, not served stale
    assert batch.raw_matrix().shape == (4, 29)


def test_micro_batches_score_bit_identically_to_one_big_batch():
    rng = np.random.default_rng(0)
    net = DenseScorer(kernels=(rng.normal(size=(29, 16)), rng.normal(size=(16, 1))),
                      biases=(rng.normal(size=16), rng.normal(size=1)))
    x = rng.normal(size=(5000, 29)).astype(np.float32)
    whole = net.score(x)
    parts = np.concatenate([net.score(x[i : i + 7]) for i in range(0, len(x), 7)])
    np.testing.assert_array_equal(whole, parts)


def model_only(records):
    """Reference: every record through the pydantic model alone."""
    from scorer.decode import decode_one

    return [decode_one(r.value) for r in records]


def test_fast_path_agrees_with_the_model_on_edge_cases():
    edge = [
        event(1), event(2, is_fraud=None), event(3, amount=0), event(4, time_s=0),
        event(5, v2=3), event(6, is_fraud=True), event(7, amount=1e308), event(8, extra="x"),
        event(9, transaction_id="x" * 128), event(10, transaction_id="x" * 129),
        event(11, schema_version=1.0), event(12, schema_version=True), event(13, v5=False),
        event(14, amount=-0.0), event(15, time_s=-1e-9), event(16, v28="1.0"),
        {k: v for k, v in event(17).items() if k != "is_fraud"},
        event(18, is_fraud=1.0), event(19, transaction_id="a\x00b"),
        event(20, transaction_id="tab\there"), event(21, transaction_id="del\x7f"),
    ]
    records = [Record(encode(e), offset=i) for i, e in enumerate(edge)]
    records += [Record(v, offset=100 + i) for i, v in enumerate(MALFORMED.values())]
    batch = decode_batch(records)
    reference = model_only(records)
    valid = [r for r in reference if not isinstance(r, str)]
    assert [e["transaction_id"] for e in batch.events] == [r["transaction_id"] for r in valid]
    np.testing.assert_array_equal(batch.raw_matrix(),
                                  np.array([[r[k] for k in (*(f"v{i}" for i in range(1, 29)),
                                                            "amount")] for r in valid]))
    for name in ("time_s", "amount", "v7"):  # decoding's own matrix (dead letters left out)
        np.testing.assert_array_equal(batch.column(name), [r[name] for r in valid])
    assert [d.reason for d in batch.dead] == [r for r in reference if isinstance(r, str)]


def test_labels_must_be_integers_and_ids_printable_on_every_path():
    """is_fraud true / 1.0 and ids with control characters are refused by the fast path and by
    the model alike (the JSON Schema says integer 0/1; NUL breaks PostgreSQL text)."""
    bad = [event(1, is_fraud=True), event(2, is_fraud=1.0), event(3, transaction_id="n\x00l"),
           event(4, transaction_id="\x1b[31m")]
    records = [Record(encode(e), offset=i) for i, e in enumerate(bad)]
    batch = decode_batch(records)
    assert batch.events == [] and len(batch.dead) == 4
    assert all(isinstance(r, str) for r in model_only(records))
    assert "is_fraud" in batch.dead[0].reason and "transaction_id" in batch.dead[2].reason
