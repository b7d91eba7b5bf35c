"""Shared benchmark plumbing: a Kafka broker for the run, and an optional profiler."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def bench_broker(tmp: Path) -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local broker in ``tmp`` for the run."""
    from producer.broker import LocalBroker, free_port

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield bootstrap
        return
    broker = LocalBroker(tmp / "kafka", port=free_port())
    try:
        yield broker.up()
    finally:
        broker.down()


@contextlib.contextmanager
def maybe_profile(enabled: bool) -> Iterator[None]:
    """Print a pyinstrument profile of the block when ``enabled``."""
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler()
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False))
