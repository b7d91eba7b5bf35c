"""The keyed transaction event (transaction.v2), the CSV layout detection, and the dead-letter
reason when an event is of the kind the model does not take (pure: no broker)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from schemas.errors import FraudstreamError
from schemas.export import JSON_DIR
from schemas.keyed import (
    INPUT_KEYED,
    INPUT_V1,
    LAYOUT_KEYED,
    LAYOUT_ULB,
    TransactionV2,
    detect_layout,
    wrong_input_reason,
)
from scorer.decode import decode_batch
from trainer.data import load_csv, load_data
from trainer.keyed_data import KeyedDataset

KEYED_HEADER = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD"


def keyed(**overrides):
    base = {"schema_version": 2, "transaction_id": "sim-1", "event_time": "2018-04-01T00:07:56Z",
            "amount": 57.16, "customer_id": "596", "terminal_id": "3156", "is_fraud": 0}
    return {**base, **overrides}


def test_keyed_event_and_its_json_schema_agree():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((JSON_DIR / "transaction.v2.json").read_text())
    good = keyed(features={"merchant_risk": 0.25})
    jsonschema.validate(good, schema)
    event = TransactionV2.model_validate_json(json.dumps(good))
    assert event.event_time.isoformat() == "2018-04-01T00:07:56+00:00"
    assert (event.customer_id, event.features) == ("596", {"merchant_risk": 0.25})
    offset = TransactionV2.model_validate(keyed(event_time="2018-04-01T02:07:56+02:00"))
    assert offset.event_time == event.event_time  # normalised to UTC


@pytest.mark.parametrize("bad", [
    {"schema_version": 1}, {"customer_id": ""}, {"terminal_id": "a\x00b"}, {"is_fraud": 2},
    {"amount": -1.0}, {"customer_id": 596}, {"features": {"bad name": 1.0}},
    {"event_time": "not a time"}, {"event_time": "2100-01-01T00:00:00Z"},
])
def test_invalid_keyed_events_rejected_by_model_and_schema(bad):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((JSON_DIR / "transaction.v2.json").read_text())
    with pytest.raises(ValidationError):
        TransactionV2.model_validate_json(json.dumps(keyed(**bad)))
    if "event_time" not in bad:  # the JSON Schema does not check date-time formats
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(keyed(**bad), schema)


def test_naive_event_time_and_missing_customer_refused():
    with pytest.raises(ValidationError, match="timezone"):
        TransactionV2.model_validate(keyed(event_time="2018-04-01T00:07:56"))
    missing = keyed()
    del missing["customer_id"]
    with pytest.raises(ValidationError, match="customer_id"):
        TransactionV2.model_validate(missing)


def test_layout_detected_from_the_header_whatever_the_order():
    assert detect_layout(KEYED_HEADER.split(",")[::-1] + ["TX_FRAUD_SCENARIO"], "x") \
        == LAYOUT_KEYED
    assert detect_layout(["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"], "x") \
        == LAYOUT_ULB
    with pytest.raises(FraudstreamError, match=r"lacks column\(s\) TERMINAL_ID: .*keyed layout"):
        detect_layout([c for c in KEYED_HEADER.split(",") if c != "TERMINAL_ID"], "f.csv")
    with pytest.raises(FraudstreamError, match="ULB layout .* or the keyed layout"):
        detect_layout(["a", "b"], "f.csv")


def test_train_loader_reads_keyed_csv_sorted_and_refuses_other_headers(tmp_path):
    path = tmp_path / "k.csv"
    path.write_text(KEYED_HEADER + ",TX_FRAUD_SCENARIO\n"
                    "1,2018-04-02 10:00:00,c1,t1,10.5,0,0\n"
                    "0,2018-04-01T09:00:00Z,c2,t1,300,1,1\n")
    data = load_data(str(path))
    assert isinstance(data, KeyedDataset)
    assert list(data.transaction_id) == ["0", "1"]  # sorted by time
    assert list(data.y) == [1, 0] and list(data.scenario) == [1, 0]
    assert data.time_us[0] == 1522573200 * 1_000_000  # 2018-04-01T09:00Z
    with pytest.raises(FraudstreamError, match="keyed CSV .* needs the ULB layout"):
        load_csv(str(path))
    junk = tmp_path / "junk.csv"
    junk.write_text("id,when,amount\n1,2,3\n")
    with pytest.raises(FraudstreamError, match="reads the ULB layout .* or the keyed layout"):
        load_data(str(junk))
    bad = tmp_path / "bad.csv"
    bad.write_text(KEYED_HEADER + "\n1,yesterday,c1,t1,10,0\n")
    with pytest.raises(FraudstreamError, match="TX_DATETIME on line 2"):
        load_data(str(bad))


def test_a_keyed_event_is_a_dead_letter_with_the_reason_for_a_v1_model():
    v1 = {"schema_version": 1, "transaction_id": "t-1", "time_s": 1.0,
          **{f"v{i}": 0.0 for i in range(1, 29)}, "amount": 1.0}
    records = [SimpleNamespace(topic="t", partition=0, offset=i, key=None,
                               value=json.dumps(e).encode())
               for i, e in enumerate((keyed(), v1))]
    batch = decode_batch(records)
    assert [e["transaction_id"] for e in batch.events] == ["t-1"]  # the v1 event still scores
    assert len(batch.dead) == 1
    assert "a transaction.v2 event, but the model in use takes transaction.v1" in \
        batch.dead[0].reason
    # and the other way round, for a keyed model
    reason = wrong_input_reason(json.dumps(v1).encode(), INPUT_KEYED)
    assert reason is not None and "transaction.v1 event" in reason and INPUT_KEYED in reason
    assert wrong_input_reason(json.dumps(keyed()).encode(), INPUT_KEYED) is None
    assert wrong_input_reason(b"not json", INPUT_V1) is None
