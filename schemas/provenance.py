"""The data's provenance on the stream (synthetic or not), carried by a Kafka record header.

A replay of a synthetic stand-in (a ``fraudstream synth`` file, marked by its
``<csv>.synthetic.json`` sidecar) puts ``fraudstream.data: synthetic`` on every event it sends,
so everything trained from the stream — ``retrain`` reads the events back — knows its figures
come from synthetic data. Events without the header are of unknown provenance (real data, or a
file that lost its marker). A header rather than an event field: it is about the data set, not
the transaction, and leaves the event contract and its decoders alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

HEADER = "fraudstream.data"
SYNTHETIC = b"synthetic"


def marker(csv: str | Path) -> Path:
    """The sidecar file that marks ``csv`` as a synthetic stand-in (``<csv>.synthetic.json``)."""
    return Path(f"{csv}.synthetic.json")


def is_synthetic(csv: str) -> bool | None:
    """True for a file written by ``fraudstream synth`` (its marker sits next to it), None when
    unknown (a URL, or a file without marker: real data, or a copy that lost its marker)."""
    if "://" in csv:
        return None
    return True if marker(csv).is_file() else None


def headers_for(synthetic: bool | None) -> list[tuple[str, bytes]] | None:
    """The headers a replay of data of this provenance puts on each event (None: none)."""
    return [(HEADER, SYNTHETIC)] if synthetic else None


def is_synthetic_record(record: Any) -> bool:
    """True if the Kafka ``record`` (a kafka-python ConsumerRecord) is marked synthetic."""
    return any(key == HEADER and value == SYNTHETIC for key, value in record.headers or ())


def synthetic_share(records: Sequence[Any]) -> tuple[bool | None, int]:
    """(True if any of ``records`` is marked synthetic, else None; how many are)."""
    marked = sum(1 for r in records if is_synthetic_record(r))
    return (True if marked else None), marked
