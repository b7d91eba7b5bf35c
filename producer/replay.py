"""Replay a ``creditcard.csv``-shaped file onto Kafka as ``transaction.v1`` JSON events.

Rows are streamed with the ``csv`` module (never the whole file in memory; it measured faster
than ``pandas.read_csv(chunksize=...)`` here, keeps exact physical line numbers and lets one bad
value invalidate only its own row).

Transaction ids are ``f"{source_tag}-{line_no:09d}"``: ``source_tag`` is the file name without
directories and ``.csv``/``.gz`` suffixes, lower-cased, with characters other than
``[a-z0-9._-]`` replaced by ``-`` (``data/creditcard.csv`` -> ``creditcard``); ``line_no`` is the
1-based physical line of the row in the file (the header is line 1). Replaying the same file
again therefore yields the same ids, which consumers de-duplicate on. ``--skip``/``--limit``
count data rows (blank and invalid ones included), so they do not shift ids.

A synthetic stand-in's events (and labels) carry the ``fraudstream.data: synthetic`` header
(:mod:`schemas.provenance`), so models retrained from the stream know their data.

``--labels`` (see :mod:`producer.labels`) chooses how the truth travels: ``inline`` (``is_fraud``
in each event), ``none``, or ``delayed:DURATION`` (a ``label.v1`` event per fraud row on the
labels topic, DURATION of dataset time after its transaction; labels still pending when the file
ends are sent at the end, as truth that arrives after the replayed window).

The replay never ends in a traceback once sending has begun: an event the broker did not
acknowledge (e.g. while it was down longer than the delivery timeout) is counted as failed, the
first client refusal stops sending (the remaining rows are read and counted, not sent), and the
summary names ``resume_skip``: the ``--skip`` from which a re-run re-sends everything that was not
confirmed. Re-sent events keep their ids, so idempotent consumers de-duplicate them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import re
import time
from collections.abc import Iterator
from csv import reader as csv_reader
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from producer.delivery import Sender
from producer.keyed_replay import send_keyed_rows
from producer.labels import LabelMode, LabelSchedule
from producer.rows import event_template, invalid_reason, json_numbers
from schemas.durations import parse_duration
from schemas.errors import FraudstreamError
from schemas.features import CSV_COLUMNS, EVENT_FEATURES, EVENT_NUMBERS
from schemas.keyed import LAYOUT_KEYED, detect_layout
from schemas.provenance import headers_for, is_synthetic

__all__ = ["ReplaySummary", "parse_duration", "replay", "source_tag", "transaction_id"]

MAX_INVALID_EXAMPLES = 10
#: Default seconds an event may stay unacknowledged (retried meanwhile) before it counts as failed.
DELIVERY_TIMEOUT_S = 60.0
_CHECK_EVERY = 2_000  # rows between checks of completed send futures
_PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "retries": 2_147_483_647,
    "max_in_flight_requests_per_connection": 5,
    "linger_ms": 20,
    "batch_size": 512 * 1024,
    "max_block_ms": 15_000,
    "request_timeout_ms": 15_000,
    "delivery_timeout_ms": 60_000,
    "client_id": "fraudstream-replay",
}


@dataclass
class ReplaySummary:
    """Outcome of one replay. ``rows`` counts the data rows read (after ``--skip``, within
    ``--limit``); ``sent`` transaction events acknowledged by the broker; ``failed`` events
    (transactions and labels) not acknowledged, whether their send failed or was never attempted
    because the client refused an earlier one; ``invalid`` rows skipped by validation, so
    ``rows == sent + failed - labels_failed + invalid``. ``labels_sent``/``labels_failed`` count
    the delayed label events on ``labels_topic`` (None unless ``--labels delayed:...``).
    ``resume_skip`` is the ``--skip`` that re-sends everything not confirmed (None if all was),
    with ``resume_limit`` the matching ``--limit`` when one was given. ``seconds`` is wall time
    of the send loop incl. the final flush, ``rate`` = sent / seconds (events/s)."""

    sent: int
    failed: int
    invalid: int
    invalid_examples: list[dict[str, Any]]
    seconds: float
    rate: float
    topic: str
    partitions: int
    first_error: str | None = None
    rows: int = 0
    labels_sent: int = 0
    labels_failed: int = 0
    labels_topic: str | None = None
    resume_skip: int | None = None
    resume_limit: int | None = None

    def human(self) -> str:
        lines = [f"sent {self.sent} events to '{self.topic}' ({self.partitions} partitions) in "
                 f"{self.seconds:.2f} s ({self.rate:,.0f} events/s); failed {self.failed}; "
                 f"invalid rows {self.invalid}"]
        lines += [f"  line {ex['line']}: {ex['reason']}" for ex in self.invalid_examples]
        if self.labels_topic is not None:
            lines.append(f"sent {self.labels_sent} label events to '{self.labels_topic}'"
                         + (f"; failed {self.labels_failed}" if self.labels_failed else ""))
        if self.resume_skip is not None:
            limit = f" --limit {self.resume_limit}" if self.resume_limit is not None else ""
            lines.append(f"not confirmed: {self.failed:,} events; resume with --skip "
                         f"{self.resume_skip}{limit} (re-sent events are de-duplicated by id)")
        if self.first_error:
            lines.append(f"first send error: {self.first_error}")
        return "\n".join(lines)


def transaction_id(tag: str, line_no: int) -> str:
    """The deterministic id of the row on physical line ``line_no`` of source ``tag``."""
    return f"{tag}-{line_no:09d}"


def source_tag(csv_path: str) -> str:
    """Stable id prefix from the file name: ``.../creditcard.csv.gz`` -> ``creditcard``."""
    name = urlparse(csv_path).path if "://" in csv_path else csv_path
    name = Path(name).name.lower()
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    tag = re.sub(r"[^a-z0-9._-]+", "-", name).strip("-.")[:64]
    return tag or "csv"


@contextlib.contextmanager
def open_source(csv_path: str) -> Iterator[TextIO]:
    """Open a local path, ``.gz`` file or http(s) URL as text for ``csv.reader``."""
    if csv_path.startswith(("http://", "https://")):
        from urllib.error import URLError
        from urllib.request import urlopen

        try:
            raw = urlopen(csv_path, timeout=30)  # noqa: S310 - scheme checked above
        except (URLError, OSError, ValueError) as exc:
            raise FraudstreamError(f"cannot download {csv_path}: {exc}") from exc
        with raw:
            binary = gzip.GzipFile(fileobj=raw) if csv_path.endswith(".gz") else raw
            yield io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        return
    path = Path(csv_path)
    if not path.is_file():
        raise FraudstreamError(f"CSV file not found: {csv_path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        yield handle


def _connect(bootstrap: str, topics: dict[str, int],
             delivery_timeout_s: float) -> tuple[Any, dict[str, int]]:
    """Create missing topics (name -> partitions); return (producer, actual partitions by name).
    Bounded by timeouts; FraudstreamError if the broker cannot be reached."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from producer.broker import tcp_reachable
    from producer.topics import CONNECT_TIMEOUT_S, ensure_topics

    problem = tcp_reachable(bootstrap)
    if problem is not None:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap} ({problem})")
    counts = ensure_topics(bootstrap, topics)
    config = dict(_PRODUCER_CONFIG)
    delivery_ms = int(delivery_timeout_s * 1000)
    if delivery_ms != config["delivery_timeout_ms"]:  # kafka-python: >= linger + request timeout
        config["delivery_timeout_ms"] = delivery_ms
        config["request_timeout_ms"] = min(config["request_timeout_ms"],
                                           delivery_ms - config["linger_ms"])
        config["max_block_ms"] = min(config["max_block_ms"], delivery_ms)
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap,
                                 bootstrap_timeout_ms=int(CONNECT_TIMEOUT_S * 1000), **config)
    except (KafkaError, OSError, ValueError) as exc:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    return producer, counts


def parse_shift(text: str | None) -> dict[int, float]:
    """``"v14=+3,amount=-1.5"`` → {event-number column index: delta} (``time_s`` is 0, ``v1``
    1, …, ``amount`` 29). A drift simulation: the delta is added to that raw feature of every
    replayed event (``amount`` is floored at 0). FraudstreamError on a bad spec."""
    shift: dict[int, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, delta = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in EVENT_FEATURES:
            raise FraudstreamError(f"--shift: {part.strip()!r} is not FEATURE=DELTA with FEATURE "
                                   f"one of v1..v28, amount")
        try:
            value = float(delta)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FraudstreamError(f"--shift: {name}: DELTA must be a finite number, not "
                                   f"{delta.strip()!r}")
        shift[EVENT_NUMBERS.index(name)] = shift.get(EVENT_NUMBERS.index(name), 0.0) + value
    return shift


def _check_args(partitions: int, rate: float | None, speedup: float | None,
                limit: int | None, skip: int, delivery_timeout_s: float) -> None:
    if partitions < 1:
        raise FraudstreamError(f"--partitions must be >= 1 (got {partitions})")
    if rate is not None and speedup is not None:
        raise FraudstreamError("choose either --rate or --speedup, not both")
    if rate is not None and not rate > 0:
        raise FraudstreamError(f"--rate must be > 0 (got {rate})")
    if speedup is not None and not speedup > 0:
        raise FraudstreamError(f"--speedup must be > 0 (got {speedup})")
    if (limit is not None and limit < 0) or skip < 0:
        raise FraudstreamError("--limit and --skip must be >= 0")
    if not 1.0 <= delivery_timeout_s <= 3600.0:
        raise FraudstreamError(f"--delivery-timeout must be 1..3600 s (got {delivery_timeout_s})")


def replay(csv: str, *, bootstrap: str, topic: str = "transactions", partitions: int = 3,
           rate: float | None = None, speedup: float | None = None, limit: int | None = None,
           skip: int = 0, labels: str | bool = "inline", labels_topic: str = "labels",
           delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
           progress: bool = False, shift: str | None = None) -> ReplaySummary:
    """Send each valid row of ``csv`` to ``topic`` as one transaction.v1 event keyed by its id
    (a keyed CSV, detected from the header: one transaction.v2 event keyed by its customer id,
    see :mod:`producer.keyed_replay`).

    ``rate`` paces at a fixed events/s; ``speedup`` follows the ``Time`` column (seconds) X times
    faster than real time; neither = as fast as possible. ``labels``: ``"inline"`` (default),
    ``"none"`` or ``"delayed:DURATION"`` (True/False = inline/none); delayed labels go to
    ``labels_topic`` (created with 3 partitions if missing). ``shift`` (``"v14=+3,…"``, see
    :func:`parse_shift`) adds a delta to raw features of every event (drift simulations).
    Every send is confirmed (acks=all, idempotent producer) or counted as failed before the
    summary is returned; an event not acknowledged within ``delivery_timeout_s`` seconds fails.
    FraudstreamError (before anything is sent) if the arguments, the file, its header or the
    broker are unusable; once sending has begun, broker trouble is reported in the summary
    (``failed``, ``resume_skip``), not raised.
    """
    _check_args(partitions, rate, speedup, limit, skip, delivery_timeout_s)
    mode = LabelMode.parse(labels)
    shifts = parse_shift(shift)
    with open_source(csv) as handle:
        reader = csv_reader(handle)  # (the parameter `csv` shadows the module)
        header = [h.strip() for h in next(reader, [])]
        keyed = detect_layout(header, csv) == LAYOUT_KEYED
        if keyed and shifts:
            raise FraudstreamError("--shift shifts V1..V28/Amount of the ULB layout; this is a "
                                   "keyed CSV")
        wanted = {labels_topic: 3, topic: partitions} if mode.delayed else {topic: partitions}
        producer, counts = _connect(bootstrap, wanted, delivery_timeout_s)
        sender = Sender(producer, delivery_timeout_s, headers_for(is_synthetic(csv)))
        try:
            send = send_keyed_rows if keyed else partial(_send_rows, shift=shifts)
            stats = send(reader, header, sender, topic, labels_topic, source_tag(csv),
                         rate=rate, speedup=speedup, limit=limit, skip=skip, mode=mode,
                         progress=progress)
        finally:
            sender.close()
    seconds = stats["seconds"]
    first = sender.first_unconfirmed
    resume_skip = None if first is None else first - 1
    return ReplaySummary(
        sent=sender.acked, failed=sender.failed, invalid=stats["invalid"],
        invalid_examples=stats["examples"], seconds=round(seconds, 4),
        rate=round(sender.acked / seconds, 1) if seconds > 0 else 0.0, topic=topic,
        partitions=counts[topic], first_error=sender.first_error, rows=stats["rows"],
        labels_sent=sender.labels_acked, labels_failed=sender.labels_failed,
        labels_topic=labels_topic if mode.delayed else None, resume_skip=resume_skip,
        resume_limit=(None if resume_skip is None or limit is None
                      else skip + limit - resume_skip))


def _send_rows(reader: Any, header: list[str], sender: Sender, topic: str, labels_topic: str,
               tag: str, *, rate: float | None, speedup: float | None, limit: int | None,
               skip: int, mode: LabelMode, progress: bool,
               shift: dict[int, float] | None = None) -> dict[str, Any]:
    """The hot loop: validate, encode and send rows (and delayed labels, interleaved as
    :class:`producer.labels.LabelSchedule` says). Returns rows read, invalid counts and loop
    seconds; every event is confirmed or counted as failed by ``sender`` on return."""
    from tqdm import tqdm

    ncols = len(header)
    order = [header.index(c) for c in CSV_COLUMNS]
    get = itemgetter(*order)
    identity = order == list(range(ncols))  # the usual file: no column reordering needed
    check_class, with_flag = mode.needs_class, mode.inline
    text_template, float_template = event_template(with_flag, "s"), event_template(with_flag, "r")
    schedule = LabelSchedule(mode.delay_s, mode.delay_text) if mode.delayed else None
    need_time = speedup is not None or schedule is not None
    bar = tqdm(unit="ev", disable=not progress, mininterval=0.5)
    invalid, examples = 0, []
    paced = rate is not None or speedup is not None
    t0: float | None = None
    records = considered = attempted = 0
    isfinite = math.isfinite
    send = sender.send
    start = time.monotonic()
    for fields in reader:
        records += 1
        if records <= skip:
            continue
        if limit is not None and considered >= limit:
            break
        considered += 1
        line_no = reader.line_num
        tid = transaction_id(tag, line_no)
        # Fast path: every field a finite JSON number, Time/Amount >= 0, Class "0"/"1".
        cols = fields if identity else get(fields) if len(fields) == ncols else None
        try:
            fast = (cols is not None and len(fields) == ncols
                    and isfinite(sum(map(float, cols))) and cols[0][0] != "-"
                    and cols[29][0] != "-" and (not check_class or cols[30] in ("0", "1"))
                    and json_numbers(",".join(cols)))
        except (ValueError, IndexError):
            fast = False
        if fast:
            fraud = cols[30] == "1"
            if shift:
                cols = list(cols)
                for i, delta in shift.items():
                    cols[i] = repr(max(0.0, float(cols[i]) + delta) if i == 29
                                   else float(cols[i]) + delta)
            payload = text_template % (tid, *cols[:30], fraud) if with_flag else \
                text_template % (tid, *cols[:30])
            event_time = float(cols[0]) if need_time else 0.0
        else:
            reason = invalid_reason(fields, ncols, get, check_class)
            if reason is not None:
                invalid += 1
                if len(examples) < MAX_INVALID_EXAMPLES:
                    examples.append({"line": line_no, "reason": reason})
                continue
            values = list(map(float, get(fields)[:31 if check_class else 30]))  # not JSON-shaped
            for i, delta in (shift or {}).items():
                values[i] = max(0.0, values[i] + delta) if i == 29 else values[i] + delta
            fraud = check_class and values[30] == 1.0
            payload = (float_template % (tid, *values[:30], values[30]) if with_flag
                       else float_template % (tid, *values[:30]))
            event_time = values[0]
        if paced and not sender.stopped:
            if rate is not None:
                target = start + attempted / rate
            else:
                t0 = event_time if t0 is None else t0
                target = start + (event_time - t0) / speedup  # type: ignore[operator]
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if schedule is not None and event_time >= schedule.next_due:
            for label in schedule.pop_due(event_time):
                send(labels_topic, label.key, label.value, label.row, True)
        attempted += 1
        send(topic, tid.encode(), payload.encode(), records)
        if schedule is not None and fraud:
            schedule.add(tid, event_time, records)
        if attempted % _CHECK_EVERY == 0:
            sender.reap()
            bar.update(_CHECK_EVERY)
    if schedule is not None:
        for label in schedule.drain():  # truth arriving after the replayed window
            send(labels_topic, label.key, label.value, label.row, True)
    sender.finish()
    bar.update(attempted % _CHECK_EVERY)
    bar.close()
    return {"rows": considered, "invalid": invalid, "examples": examples,
            "seconds": time.monotonic() - start}
