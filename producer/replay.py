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
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import io
import math
import re
import time
from collections.abc import Iterator
from csv import reader as csv_reader
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from schemas.errors import FraudstreamError
from schemas.features import CSV_COLUMNS, EVENT_NUMBERS

MAX_INVALID_EXAMPLES = 10
FLUSH_TIMEOUT_S = 120.0
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
    """Outcome of one replay. ``sent`` counts broker-acknowledged events, ``failed`` events whose
    send was attempted but not acknowledged, ``invalid`` rows skipped by validation; ``seconds``
    is wall time of the send loop incl. the final flush, ``rate`` = sent / seconds (events/s)."""

    sent: int
    failed: int
    invalid: int
    invalid_examples: list[dict[str, Any]]
    seconds: float
    rate: float
    topic: str
    partitions: int
    first_error: str | None = None

    def human(self) -> str:
        lines = [f"sent {self.sent} events to '{self.topic}' ({self.partitions} partitions) in "
                 f"{self.seconds:.2f} s ({self.rate:,.0f} events/s); failed {self.failed}; "
                 f"invalid rows {self.invalid}"]
        lines += [f"  line {ex['line']}: {ex['reason']}" for ex in self.invalid_examples]
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


def _invalid_reason(fields: list[str], ncols: int, get: itemgetter, labels: bool) -> str | None:
    """Why a row is invalid (None if valid). Slow path: only rows the fast path rejects."""
    if not fields or (len(fields) == 1 and not fields[0].strip()):
        return "empty line"
    if len(fields) != ncols:
        return f"expected {ncols} fields, got {len(fields)}"
    checked = CSV_COLUMNS if labels else CSV_COLUMNS[:-1]
    for name, text in zip(checked, get(fields), strict=False):
        try:
            value = float(text)
        except ValueError:
            return f"{name}: not a number ({text[:20]!r})"
        if not math.isfinite(value):
            return f"{name}: not finite ({text[:20]!r})"
        if name in ("Time", "Amount") and value < 0:
            return f"{name}: negative ({text[:20]!r})"
        if name == "Class" and value not in (0.0, 1.0):
            return f"Class: must be 0 or 1 ({text[:20]!r})"
    return None


def _template(labels: bool, conversion: str) -> str:
    """%-format template of one event: (transaction_id, time_s, v1..v28, amount[, is_fraud]).

    ``conversion`` is ``s`` (the fields' source text, already checked to be JSON numbers) or
    ``r`` (Python floats, whose repr is what ``json.dumps`` would write).
    """
    body = ",".join(f'"{name}":%{conversion}' for name in EVENT_NUMBERS)
    tail = ',"is_fraud":%d}' if labels else "}"
    return '{"schema_version":1,"transaction_id":"%s",' + body + tail


_OTHER_CHARS = re.compile(r"[^0-9.eE+\-,]")
_LEADING_ZERO = re.compile(r",-?0[0-9]")


def _json_numbers(joined: str) -> bool:
    """True if every field of a comma-joined row, each already parsed by ``float()`` as finite,
    is also a JSON number literal (rejects whitespace, "_", "+1", ".5", "5.", "007", ...)."""
    s = f",{joined},"
    return not (_OTHER_CHARS.search(s) or ",+" in s or ",." in s or ",-." in s or ".," in s
                or ".e" in s or ".E" in s or _LEADING_ZERO.search(s))


def _connect(bootstrap: str, topic: str, partitions: int) -> tuple[Any, int]:
    """Create the topic if missing; return (producer, partition count). Bounded by timeouts."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from producer.broker import tcp_reachable
    from producer.topics import CONNECT_TIMEOUT_S, ensure_topics

    problem = tcp_reachable(bootstrap)
    if problem is not None:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap} ({problem})")
    count = ensure_topics(bootstrap, {topic: partitions})[topic]
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap,
                                 bootstrap_timeout_ms=int(CONNECT_TIMEOUT_S * 1000),
                                 **_PRODUCER_CONFIG)
    except (KafkaError, OSError, ValueError) as exc:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    return producer, count


def _check_args(partitions: int, rate: float | None, speedup: float | None,
                limit: int | None, skip: int) -> None:
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


def replay(csv: str, *, bootstrap: str, topic: str = "transactions", partitions: int = 3,
           rate: float | None = None, speedup: float | None = None, limit: int | None = None,
           skip: int = 0, labels: bool = True, progress: bool = False) -> ReplaySummary:
    """Send each valid row of ``csv`` to ``topic`` as one transaction.v1 event keyed by its id.

    ``rate`` paces at a fixed events/s; ``speedup`` follows the ``Time`` column (seconds) X times
    faster than real time; neither = as fast as possible. Every send is confirmed (acks=all,
    idempotent producer) before the summary is returned. FraudstreamError if the file, its
    header or the broker is unusable.
    """
    _check_args(partitions, rate, speedup, limit, skip)
    with open_source(csv) as handle:
        reader = csv_reader(handle)  # (the parameter `csv` shadows the module)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if not header:
            raise FraudstreamError(f"{csv}: empty file (no header line)")
        if missing:
            raise FraudstreamError(
                f"{csv}: header lacks column(s) {', '.join(missing)} "
                f"(needs Time, V1..V28, Amount, Class)")
        producer, count = _connect(bootstrap, topic, partitions)
        sender = _Sender(producer)
        try:
            stats = _send_rows(reader, header, sender, topic, source_tag(csv), rate=rate,
                               speedup=speedup, limit=limit, skip=skip, labels=labels,
                               progress=progress)
        finally:
            producer.close(timeout=10)
    seconds = stats["seconds"]
    return ReplaySummary(sent=sender.acked, failed=sender.failed, invalid=stats["invalid"],
                         invalid_examples=stats["examples"], seconds=round(seconds, 4),
                         rate=round(sender.acked / seconds, 1) if seconds > 0 else 0.0,
                         topic=topic, partitions=count, first_error=sender.first_error)


class _Sender:
    """Sends events and confirms each future; counts acknowledged and failed sends."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.pending: collections.deque[Any] = collections.deque()
        self.acked = 0
        self.failed = 0
        self.first_error: str | None = None

    def _fail(self, n: int, error: object) -> None:
        self.failed += n
        if self.first_error is None:
            self.first_error = repr(error)

    def send(self, topic: str, key: bytes, value: bytes) -> bool:
        """Queue one event; False (and counted as failed) if the client refused it."""
        from kafka.errors import KafkaError

        try:
            self.pending.append(self.producer.send(topic, value=value, key=key))
        except KafkaError as exc:
            self._fail(1, exc)
            return False
        return True

    def reap(self) -> None:
        """Account for the futures that have completed, oldest first."""
        pending = self.pending
        while pending and pending[0].is_done:
            future = pending.popleft()
            if future.succeeded():
                self.acked += 1
            else:
                self._fail(1, future.exception)

    def finish(self) -> None:
        """Flush and account for every outstanding future."""
        from kafka.errors import KafkaError

        try:
            self.producer.flush(timeout=FLUSH_TIMEOUT_S)
        except KafkaError as exc:
            self._fail(0, exc)
        self.reap()
        if self.pending:
            self._fail(len(self.pending), f"not acknowledged within {FLUSH_TIMEOUT_S:.0f} s")
            self.pending.clear()


def _send_rows(reader: Any, header: list[str], sender: _Sender, topic: str, tag: str, *,
               rate: float | None, speedup: float | None, limit: int | None, skip: int,
               labels: bool, progress: bool) -> dict[str, Any]:
    """The hot loop: validate, encode and send rows. Returns invalid counts and loop seconds."""
    from tqdm import tqdm

    ncols = len(header)
    order = [header.index(c) for c in CSV_COLUMNS]
    get = itemgetter(*order)
    identity = order == list(range(ncols))  # the usual file: no column reordering needed
    text_template, float_template = _template(labels, "s"), _template(labels, "r")
    bar = tqdm(unit="ev", disable=not progress, mininterval=0.5)
    invalid, examples = 0, []
    paced = rate is not None or speedup is not None
    t0: float | None = None
    records = considered = attempted = 0
    isfinite = math.isfinite
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
                    and cols[29][0] != "-" and (not labels or cols[30] in ("0", "1"))
                    and _json_numbers(",".join(cols)))
        except (ValueError, IndexError):
            fast = False
        if fast:
            payload = text_template % (tid, *cols[:30], cols[30] == "1") if labels else \
                text_template % (tid, *cols[:30])
            event_time = float(cols[0]) if speedup is not None else 0.0
        else:
            reason = _invalid_reason(fields, ncols, get, labels)
            if reason is not None:
                invalid += 1
                if len(examples) < MAX_INVALID_EXAMPLES:
                    examples.append({"line": line_no, "reason": reason})
                continue
            values = list(map(float, get(fields)))  # valid, but not JSON-shaped text
            payload = (float_template % (tid, *values[:30], values[30]) if labels
                       else float_template % (tid, *values[:30]))
            event_time = values[0]
        if paced:
            if rate is not None:
                target = start + attempted / rate
            else:
                t0 = event_time if t0 is None else t0
                target = start + (event_time - t0) / speedup  # type: ignore[operator]
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        attempted += 1
        if not sender.send(topic, tid.encode(), payload.encode()):
            break  # the client refused an event (e.g. metadata timeout): stop, report
        if attempted % _CHECK_EVERY == 0:
            sender.reap()
            bar.update(_CHECK_EVERY)
    sender.finish()
    bar.update(attempted % _CHECK_EVERY)
    bar.close()
    return {"invalid": invalid, "examples": examples, "seconds": time.monotonic() - start}
