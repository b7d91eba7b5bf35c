"""Event contracts: JSON Schema files in sync with the models, and validation rules."""

import json
import math

import pytest
from pydantic import ValidationError

from schemas.events import AlertV1, TransactionV1
from schemas.export import JSON_DIR, SCHEMA_FILES, render


def event(**overrides):
    base = {"schema_version": 1, "transaction_id": "creditcard-000000001", "time_s": 10.0,
            **{f"v{i}": 0.5 for i in range(1, 29)}, "amount": 12.5, "is_fraud": 0}
    return {**base, **overrides}


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_json_schema_files_match_models(name):
    assert (JSON_DIR / name).read_text() == render(SCHEMA_FILES[name]), (
        f"schemas/json/{name} is stale: run `python -m schemas.export`")


def test_valid_event_and_schema_agree():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((JSON_DIR / "transaction.v1.json").read_text())
    jsonschema.validate(event(), schema)
    assert TransactionV1.model_validate_json(json.dumps(event())).amount == 12.5
    unlabelled = event()
    del unlabelled["is_fraud"]
    assert TransactionV1.model_validate(unlabelled).is_fraud is None


@pytest.mark.parametrize("bad", [
    {"amount": -1.0}, {"schema_version": 2}, {"is_fraud": 2}, {"transaction_id": ""},
    {"v3": "1.5"}, {"transaction_id": 7}, {"time_s": -5.0}, {"v1": None},
])
def test_invalid_events_rejected_by_model_and_schema(bad):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((JSON_DIR / "transaction.v1.json").read_text())
    with pytest.raises(ValidationError):
        TransactionV1.model_validate_json(json.dumps(event(**bad)))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event(**bad), schema)


def test_missing_field_and_non_finite_rejected():
    missing = event()
    del missing["v7"]
    with pytest.raises(ValidationError, match="v7"):
        TransactionV1.model_validate(missing)
    with pytest.raises(ValidationError):
        TransactionV1.model_validate(event(v2=math.inf))
    with pytest.raises(ValidationError):
        TransactionV1.model_validate_json(json.dumps(event(v2=math.nan)))


def test_alert_round_trip():
    alert = AlertV1(schema_version=1, transaction_id="t", model_version=1, score=0.9,
                    threshold=0.7, amount=1.0, time_s=0.0, source_topic="transactions",
                    source_partition=0, source_offset=5, scored_at="2026-01-01T00:00:00Z")
    assert AlertV1.model_validate_json(alert.model_dump_json()) == alert
