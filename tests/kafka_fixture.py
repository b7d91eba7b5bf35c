"""A real Apache Kafka broker for the test session, and per-test topics.

``kafka_bootstrap`` (session) picks, in order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` if set (it must answer);
2. when a Docker daemon answers a ping and has the locally built Kafka image
   (``fraudstream-local/kafka:<version>``, from ``bash deploy/images/build.sh kafka``; or
   ``FRAUDSTREAM_TEST_KAFKA_IMAGE``): that image started through testcontainers, on the host's
   network (loopback, free ports) with the same broker settings as the local broker
   (``deploy/kafka/server.properties``); no image is pulled and no Ryuk reaper is started (no
   registry is needed). If that container does not come up, the next option is used;
3. a :class:`producer.broker.LocalBroker` (Maven Central jars, Java 17+) on a free port with a
   temporary data dir, stopped at the end of the session.

Without any of these the Kafka tests are skipped, except with ``CI=true``, where they fail.
``new_topic`` (fixture) is a callable ``(bootstrap, partitions=3) -> str`` creating a fresh,
uniquely named topic, so tests never share data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest

from producer.broker import LocalBroker, free_port, wait_ready
from producer.jars import DEPLOY_DIR, kafka_version
from tests.ci import missing

CONTAINER_LABEL = "io.fraudstream.test"


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


def local_kafka_image() -> str | None:
    """Name of the locally built Kafka image if the Docker daemon has it, else None."""
    name = (
        os.environ.get("FRAUDSTREAM_TEST_KAFKA_IMAGE")
        or f"fraudstream-local/kafka:{kafka_version()}"
    )
    try:
        import docker

        client = docker.from_env(timeout=30)
        try:
            client.images.get(name)
            return name
        finally:
            client.close()
    except Exception:  # no daemon, no image, or no docker package: not usable
        return None


def broker_environment(port: int, controller_port: int) -> dict[str, str]:
    """deploy/kafka/server.properties as the KAFKA_* variables of the Kafka image."""
    template = (DEPLOY_DIR / "server.properties").read_text()
    rendered = template.format(
        port=port, controller_port=controller_port, log_dirs="/var/lib/kafka/data"
    )
    env = {"CLUSTER_ID": uuid.uuid4().hex[:22]}
    for line in rendered.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            name = key.strip().replace("_", "__").replace("-", "___").replace(".", "_")
            env[f"KAFKA_{name.upper()}"] = value.strip()
    return env


@contextlib.contextmanager
def kafka_container(image: str) -> Iterator[str]:
    """The Kafka image started through testcontainers on the host network; yields bootstrap."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    testcontainers_config.ryuk_disabled = True  # its image cannot be pulled without a registry
    port, controller_port = free_port(), free_port()
    container = DockerContainer(image).with_kwargs(
        network_mode="host", labels={CONTAINER_LABEL: "kafka"}
    )
    for key, value in broker_environment(port, controller_port).items():
        container.with_env(key, value)
    container.start()
    try:
        bootstrap = f"127.0.0.1:{port}"
        wait_ready(bootstrap, timeout=90)
        yield bootstrap
    finally:
        container.stop()


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
    image = local_kafka_image() if _docker_answers() else None
    if image is not None:
        with contextlib.ExitStack() as stack:
            try:
                bootstrap = stack.enter_context(kafka_container(image))
            except Exception as exc:  # the container did not come up: the local broker instead
                warnings.warn(
                    f"Kafka image {image} did not start ({exc}); using the local broker",
                    stacklevel=1,
                )
            else:
                yield bootstrap
                return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port())
    try:
        bootstrap = broker.up()
    except Exception as exc:  # FraudstreamError: no Java/Maven, or start failed
        broker.down()
        missing("no Kafka broker", str(exc))
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
