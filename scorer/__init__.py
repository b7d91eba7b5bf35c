"""Scorer: a Kafka consumer group scoring micro-batches with exactly-once effects in SQL.

Public surface for other parts (the retraining job reads events back and loads models the way
the scorer does): :func:`decode_batch` (transaction events → feature matrix and rejects) and
:func:`load_model` (a registered model's framework-free scoring form, hash-verified).
"""

from scorer.decode import decode_batch
from scorer.model import load_model

__all__ = ["decode_batch", "load_model"]
