"""Scorer: a Kafka consumer group that scores transactions in micro-batches with exactly-once SQL effects."""
