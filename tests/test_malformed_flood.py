"""A flood of malformed transaction events (>= 10,000 messages of >= 30 kinds) mixed with valid
ones on a real broker: every malformed one ends in the DLQ with a reason, the valid ones are
counted exactly, and the scorer is never stuck (it ends by --until-idle)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, KafkaProducer

from producer.topics import ensure_topics
from scorer.model import load_model
from scorer.service import ScoreConfig, Scorer
from tests.scoring_helpers import offline_reference, replay_all, setup_model, streamed_result
from trainer.synth import write_csv

N_VALID = 3000
N_MALFORMED = 10_200
#: Messages just under the broker's 1 MiB limit are expensive: only this many of them.
NEAR_LIMIT = 4


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


def malformed_kinds(good: dict, i: int) -> dict[str, bytes]:
    """One malformed variant of ``good`` per kind; ``i`` makes ids (and so messages) distinct."""
    tid = f"bad-{i}"
    ok = {**good, "transaction_id": tid}
    raw = _dumps(ok)

    def without(*names: str) -> bytes:
        return _dumps({k: v for k, v in ok.items() if k not in names})

    def swap(name: str, literal: bytes) -> bytes:
        """``ok`` with the JSON value of ``name`` replaced by ``literal`` (bytes, verbatim)."""
        head = {k: v for k, v in ok.items() if k != name}
        return _dumps(head)[:-1] + b', "' + name.encode() + b'": ' + literal + b"}"

    return {
        "empty": b"",
        "whitespace": b" \t\r\n  ",
        "not json": b"{not json " + str(i).encode(),
        "truncated json": raw[: len(raw) // 2],
        "trailing garbage": raw + b" xyz",
        "two objects": raw + raw,
        "top-level array": _dumps([ok]),
        "top-level string": _dumps(tid),
        "top-level number": str(i).encode(),
        "top-level null": b"null",
        "top-level true": b"true",
        "non-utf8 bytes": b"\xff\xfe\xfa" + str(i).encode() + b"\x80\x81",
        "non-utf8 inside id": swap("transaction_id", b'"id-\xc3\x28-' + str(i).encode() + b'"'),
        "nul in id": _dumps({**ok, "transaction_id": f"nul\x00{i}"}),
        "tab in id": _dumps({**ok, "transaction_id": f"tab\t{i}"}),
        "escape char in id": _dumps({**ok, "transaction_id": f"esc\x1b[31m{i}"}),
        "DEL in id": _dumps({**ok, "transaction_id": f"del\x7f{i}"}),
        "newline in id": _dumps({**ok, "transaction_id": f"line\n{i}"}),
        "empty id": _dumps({**ok, "transaction_id": ""}),
        "id too long": _dumps({**ok, "transaction_id": "x" * 129 + str(i)}),
        "id is a number": _dumps({**ok, "transaction_id": i}),
        "id is null": _dumps({**ok, "transaction_id": None}),
        "is_fraud true": _dumps({**ok, "is_fraud": True}),
        "is_fraud 1.0": _dumps({**ok, "is_fraud": 1.0}),
        "is_fraud 0.0": _dumps({**ok, "is_fraud": 0.0}),
        "is_fraud string": _dumps({**ok, "is_fraud": "1"}),
        "is_fraud 2": _dumps({**ok, "is_fraud": 2}),
        "is_fraud -1": _dumps({**ok, "is_fraud": -1}),
        "schema_version true": _dumps({**ok, "schema_version": True}),
        "schema_version 1.0": _dumps({**ok, "schema_version": 1.0}),
        "schema_version string": _dumps({**ok, "schema_version": "1"}),
        "unknown schema_version 2": _dumps({**ok, "schema_version": 2}),
        "unknown schema_version 0": _dumps({**ok, "schema_version": 0}),
        "schema_version missing": without("schema_version"),
        "amount string": _dumps({**ok, "amount": "12.5"}),
        "amount bool": _dumps({**ok, "amount": False}),
        "v5 string": _dumps({**ok, "v5": "0.5"}),
        "v7 null": _dumps({**ok, "v7": None}),
        "v9 object": _dumps({**ok, "v9": {"x": 1}}),
        "v11 list": _dumps({**ok, "v11": [1.0]}),
        "NaN literal": swap("v3", b"NaN"),
        "Infinity literal": swap("amount", b"Infinity"),
        "-Infinity literal": swap("v20", b"-Infinity"),
        "huge number 1e400": swap("v2", b"1e400"),
        "huge negative -1e400": swap("v2", b"-1e400"),
        "huge integer literal": swap("amount", b"9" * 500),
        "negative amount": _dumps({**ok, "amount": -0.01}),
        "negative time_s": _dumps({**ok, "time_s": -1.0}),
        "missing amount": without("amount"),
        "missing id": without("transaction_id"),
        "missing v28": without("v28"),
        "only version": _dumps({"schema_version": 1}),
        "empty object": b"{}",
        "duplicate key, bad last": swap("amount", b"-5"),  # amount appears twice, last < 0
        "duplicate id, bad last": swap("transaction_id", b"42"),
        "10,000 unclosed [": b"[" * 10_000,
        "deeply nested arrays": b"[" * 8_000 + b"]" * 8_000,
        "deeply nested objects": b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
        "nested in a valid field": _dumps({**ok, "v1": [[[[[[1.0]]]]]]}),
        "bom prefix": b"\xef\xbb\xbf" + raw,
        "single quotes": raw.replace(b'"', b"'"),
        "oversized (20 KB)": _dumps({**ok, "note": "x" * 20_000}),
    }


#: Too large to repeat thousands of times: only NEAR_LIMIT of these are added to the flood.
NEAR_LIMIT_SIZE = 900_000


def near_limit(good: dict, i: int) -> bytes:
    return _dumps({**good, "transaction_id": f"big-{i}", "padding": "p" * NEAR_LIMIT_SIZE})


def test_malformed_kinds_are_all_refused_by_decode():
    """Sanity (pure, no broker): each kind really is refused, with a one-line reason."""
    from scorer.decode import decode_batch

    @dataclass
    class Record:
        value: bytes
        offset: int = 0
        topic: str = "t"
        partition: int = 0
        key: bytes | None = None

    good = {"schema_version": 1, "transaction_id": "g", "time_s": 1.0,
            **{f"v{k}": 0.1 * k for k in range(1, 29)}, "amount": 10.0, "is_fraud": 0}
    kinds = malformed_kinds(good, 7)
    assert len(kinds) >= 30
    values = [*kinds.values(), near_limit(good, 1)]
    batch = decode_batch([Record(v, offset=i) for i, v in enumerate(values)])
    accepted = [list(kinds)[r.offset] for r in batch.records]
    assert not accepted, f"accepted as valid: {accepted}"
    assert all(d.reason.strip() and "\n" not in d.reason for d in batch.dead)


@pytest.mark.kafka
def test_malformed_flood_all_dead_lettered_valid_counts_exact(kafka_bootstrap, new_topic,
                                                              tmp_path, home):
    csv = str(write_csv(tmp_path / "flood.csv", N_VALID, fraud_rate=0.03, seed=41))
    db_url = f"sqlite:///{tmp_path / 'flood.db'}"
    engine = setup_model(csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(csv, kafka_bootstrap, topic)
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    good = json.loads(next(iter(consumer)).value)
    consumer.close()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20,
                             max_request_size=2 * 1024 * 1024)
    sent: dict[str, str] = {}  # "topic/partition/offset" -> kind
    futures = []
    i = 0
    while len(futures) < N_MALFORMED - NEAR_LIMIT:
        for kind, value in malformed_kinds(good, i).items():
            futures.append((kind, producer.send(topic, key=f"bad-{i}".encode(), value=value,
                                                partition=i % 3)))
        i += 1
    for j in range(NEAR_LIMIT):
        futures.append(("near-limit 900 KB", producer.send(
            topic, key=f"big-{j}".encode(), value=near_limit(good, j), partition=j % 3)))
    producer.flush(timeout=120)
    for kind, future in futures:
        meta = future.get(timeout=60)
        sent[f"{topic}/{meta.partition}/{meta.offset}"] = kind
    producer.close()
    assert len(sent) >= 10_000 and len(set(sent.values())) >= 30

    ensure_topics(kafka_bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    config = ScoreConfig(bootstrap=kafka_bootstrap, topic=topic, group_id="flood",
                         batch_size=1000, until_idle=8, alerts_topic=f"{topic}.alerts",
                         dlq_topic=f"{topic}.dlq")
    summary = Scorer(config, engine, load_model(engine, home=home)).run()

    assert summary.consumed == N_VALID + len(sent)  # it got through everything: not stuck
    assert summary.scored == N_VALID
    assert summary.dlq == len(sent)
    assert streamed_result(engine) == offline_reference(engine, csv, home, ids)

    dlq = KafkaConsumer(f"{topic}.dlq", bootstrap_servers=kafka_bootstrap,
                        auto_offset_reset="earliest", consumer_timeout_ms=10_000,
                        fetch_max_bytes=8 * 1024 * 1024)
    letters = list(dlq)
    dlq.close()
    sources = Counter(dict(m.headers)["fraudstream.source"].decode() for m in letters)
    assert sources.most_common(1)[0][1] == 1, "a message was dead-lettered twice"
    assert set(sources) == set(sent), "DLQ differs from the malformed messages sent"
    for m in letters:
        headers = dict(m.headers)
        assert headers["fraudstream.error"].decode().strip(), sent[
            headers["fraudstream.source"].decode()]
    by_ref = [m for m in letters if dict(m.headers).get("fraudstream.body") == b"reference"]
    assert {sent[json.loads(m.value)["reference"]] for m in by_ref} == {"near-limit 900 KB"}
