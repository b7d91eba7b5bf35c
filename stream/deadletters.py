"""Dead-letter messages: the original bytes with the reason and source in headers, or — when the
original is too large to re-publish safely, or is itself what failed — a small JSON reference to
where it still is (topic/partition/offset, size, sha256). Pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

#: Originals larger than this (bytes) are dead-lettered by reference, never copied: a copy plus
#: headers could exceed the broker's request size and block the partition for good.
MAX_COPIED_BYTES = 64 * 1024
#: Longest reason kept in the ``fraudstream.error`` header (characters).
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class Outgoing:
    """One message to publish (and have confirmed) before the batch's SQL commit."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be processed, with the reason (one line)."""

    record: Any  # anything with topic, partition, offset, key, value
    reason: str


def source_of(record: Any) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def dead_letter_message(letter: DeadLetter, dlq_topic: str, *,
                        by_reference: bool = False) -> Outgoing:
    """The message that dead-letters ``letter`` on ``dlq_topic``."""
    record = letter.record
    reason = " ".join(letter.reason.split())[:MAX_REASON_CHARS]
    value: bytes = record.value or b""
    headers = [("fraudstream.error", reason.encode("utf-8", "replace")),
               ("fraudstream.source", source_of(record).encode())]
    if by_reference or len(value) > MAX_COPIED_BYTES:
        headers.append(("fraudstream.body", b"reference"))
        value = json.dumps({"reference": source_of(record), "bytes": len(value),
                            "sha256": hashlib.sha256(value).hexdigest()}).encode()
    key = record.key if record.key is None or len(record.key) <= 1024 else record.key[:1024]
    return Outgoing(dlq_topic, key, value, headers)
