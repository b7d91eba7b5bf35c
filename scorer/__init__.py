"""Scorer: a Kafka consumer group scoring micro-batches with exactly-once effects in SQL."""
