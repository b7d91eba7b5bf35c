"""Topic administration shared by the producer and the scorer."""

from __future__ import annotations

from collections.abc import Mapping

from schemas.errors import FraudstreamError

CONNECT_TIMEOUT_S = 10.0


def ensure_topics(bootstrap: str, topics: Mapping[str, int]) -> dict[str, int]:
    """Create each missing topic (name -> partitions, replication 1); return actual partitions.

    Raises :class:`FraudstreamError` naming the address when the broker cannot be reached.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    ms = int(CONNECT_TIMEOUT_S * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=ms,
                                 request_timeout_ms=ms, client_id="fraudstream-admin")
    except (KafkaError, OSError, ValueError) as exc:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    try:
        existing = set(admin.list_topics())
        missing = {n: p for n, p in topics.items() if n not in existing}
        if missing:
            try:
                admin.create_topics({n: {"num_partitions": p, "replication_factor": 1}
                                     for n, p in missing.items()}, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another client
        described = admin.describe_topics(list(topics))
        return {d["name"]: len(d["partitions"]) for d in described}
    except KafkaError as exc:
        raise FraudstreamError(f"Kafka at {bootstrap}: cannot prepare topics "
                               f"{', '.join(topics)}: {exc!r}") from exc
    finally:
        admin.close()
