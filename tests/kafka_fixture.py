"""A real Apache Kafka broker for the test session, and per-test topics.

``kafka_bootstrap`` (session) picks, in order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` if set (it must answer);
2. testcontainers' Kafka module, when a Docker daemon actually answers a ping;
3. a :class:`producer.broker.LocalBroker` (Maven Central jars, Java 17+) on a free port with a
   temporary data dir, stopped at the end of the session.

Without any of these the Kafka tests are skipped, except with ``CI=true``, where they fail.
``new_topic`` (fixture) is a callable ``(bootstrap, partitions=3) -> str`` creating a fresh,
uniquely named topic, so tests never share data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from producer.broker import LocalBroker, free_port, wait_ready


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true but no Kafka broker: {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


def _docker_answers() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure means "no usable Docker daemon"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address (``host:port``) of a real broker for the whole test session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        try:
            wait_ready(configured, timeout=30)
        except Exception as exc:
            pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer: {exc}")
        yield configured
        return
    if _docker_answers():
        try:
            from testcontainers.kafka import KafkaContainer
        except ImportError:
            pass
        else:
            with KafkaContainer() as container:
                yield container.get_bootstrap_server()
            return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port())
    try:
        bootstrap = broker.up()
    except Exception as exc:  # FraudstreamError: no Java/Maven, or start failed
        broker.down()
        _unavailable(str(exc))
    try:
        yield bootstrap
    finally:
        broker.down()


def create_topic(bootstrap: str, partitions: int = 3) -> str:
    """Create a uniquely named topic (replication 1) and return its name."""
    from producer.topics import ensure_topics

    name = f"test-{uuid.uuid4().hex[:12]}"
    ensure_topics(bootstrap, {name: partitions})
    return name


@pytest.fixture
def new_topic() -> Callable[..., str]:
    """The :func:`create_topic` helper: ``new_topic(bootstrap, partitions=3) -> str``."""
    return create_topic
