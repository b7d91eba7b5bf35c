"""Scorer: a Kafka consumer group scoring micro-batches with exactly-once effects in SQL.

Public surface for other parts (the retraining job reads events back and loads models the way
the scorer does): :func:`decode_batch` (transaction events → feature matrix and rejects),
:func:`keyed_decoder` (keyed events, or the reason a keyed scorer refuses each),
:func:`fraud_known` (when keyed scoring counts a transaction as known fraud) and
:func:`load_model` (a registered model's framework-free scoring form, hash-verified).
"""

from scorer.decode import decode_batch
from scorer.keyed_decode import keyed_decoder
from scorer.keyed_store import fraud_known
from scorer.model import load_model

__all__ = ["decode_batch", "fraud_known", "keyed_decoder", "load_model"]
