"""Data contracts: transaction, alert and label events, and the feature contract."""

from schemas.events import MAX_EVENT_BYTES, AlertV1, LabelV1, TransactionV1
from schemas.features import (
    CSV_COLUMNS,
    EVENT_FEATURES,
    MODEL_FEATURES,
    RAW_FEATURES,
    FeatureContract,
    raw_matrix_from_events,
)

__all__ = [
    "CSV_COLUMNS",
    "EVENT_FEATURES",
    "MAX_EVENT_BYTES",
    "MODEL_FEATURES",
    "RAW_FEATURES",
    "AlertV1",
    "FeatureContract",
    "LabelV1",
    "TransactionV1",
    "raw_matrix_from_events",
]
