"""SQLAlchemy tables. Every write the scorer makes is keyed by a natural key, so it is idempotent.

* ``model_versions``: the model registry (one row per registered model).
* ``alerts``: flagged transactions, natural key (``transaction_id``, ``model_version``).
* ``confusion_counts``: running tp/fp/tn/fn per model version.
* ``consumer_offsets``: next offset to read per (group, topic, partition); written in the same
  database transaction as the batch's alerts and counts, so the database is the source of truth.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("strategy", String(32), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("threshold_policy", String(64), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("artifact_dir", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("data_sha256", String(64), nullable=False),
    Column("stage", String(16), nullable=False, index=True),
)

alerts = Table(
    "alerts",
    metadata,
    Column("transaction_id", String(128), primary_key=True),
    Column("model_version", Integer, ForeignKey("model_versions.version"), primary_key=True),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("amount", Float, nullable=False),
    Column("time_s", Float, nullable=False),
    Column("is_fraud", SmallInteger, nullable=True),
    Column("source_topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

confusion_counts = Table(
    "confusion_counts",
    metadata,
    Column("model_version", Integer, ForeignKey("model_versions.version"), primary_key=True),
    Column("tp", BigInteger, nullable=False, default=0),
    Column("fp", BigInteger, nullable=False, default=0),
    Column("tn", BigInteger, nullable=False, default=0),
    Column("fn", BigInteger, nullable=False, default=0),
    Column("unlabelled", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
