"""SQLAlchemy tables. Every write the scorer makes is keyed by a natural key, so it is idempotent.

* ``model_versions``: the model registry (one row per registered model).
* ``decisions``: the decision log, one row per scored transaction and model version (natural key
  (``transaction_id``, ``model_version``)): score, threshold, flag, event time, lineage.
* ``alerts``: flagged transactions, natural key (``transaction_id``, ``model_version``), with
  their explanation (top contributing features) and the values the model saw for them.
* ``labels``: the truth about transactions, with history (natural key ``label_id``; ``seq`` is the
  arrival order). The latest label of a transaction (by ``observed_at``, then ``seq``) is its truth.
* ``cases``: a keyed card's alerts gathered into one work item for the desk (``store.cases``).
* ``consumer_offsets``: next offset to read per (group, topic, partition), with the topic's Kafka
  id; written in the same database transaction as the batch's effects, so the database is the
  source of truth.

Confusion counts are not stored: they are computed from decisions ⋈ labels (``store.counts``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
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
    # The model family (``models.FAMILIES``); rows from before 0003 are the Keras net.
    Column("family", String(16), nullable=False, server_default="dense"),
    # Where the training data came from (source, event-time window, label counts); 0004.
    Column("training", JSON, nullable=True),
    # The raw features' training-set ranges (``schemas.features.feature_ranges``, also the
    # hashed artifact ``feature_ranges.json``); NULL for models registered before 0007.
    Column("feature_ranges", JSON, nullable=True),
)

# One row per promotion decision (0004): by the retraining gate or by a named person.
promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", Integer, nullable=False, index=True),
    Column("previous_version", Integer, nullable=True),
    Column("outcome", String(16), nullable=False),  # promoted | rejected | held
    Column("decided_by", String(128), nullable=False),  # "gate" or "person:<name>"
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("rule", Text, nullable=True),
    Column("window_start", DateTime(timezone=True), nullable=True),
    Column("window_end", DateTime(timezone=True), nullable=True),
    Column("comparison", JSON, nullable=True),
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
    Column("source_topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Top contributing features [{feature, contribution}] (``AlertV1.top_features``); NULL for
    # alerts written before explanations existed.
    Column("explanation", JSON, nullable=True),
    # The values the model saw for those features, {feature: raw value} (0007; NULL before). A
    # mapping, so a richer feature vector (keyed data) fits the same column.
    Column("feature_values", JSON, nullable=True),
    # A keyed alert's card (the event's ``customer_id``, 0009); NULL for ULB (v1) alerts.
    Column("card_id", String(128), nullable=True),
    # The card's case this alert belongs to (``cases``, 0010); NULL for ULB (v1) alerts.
    Column("case_id", Integer, nullable=True),
    # The ops desk's work state (0005): open → claimed → closed; ``revision`` bumps on change.
    Column("status", String(16), nullable=False, server_default="open"),
    Column("assignee", String(64), nullable=True),
    Column("disposition", String(16), nullable=True),
    Column("disposition_note", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("revision", Integer, nullable=False, server_default="0"),
    Index("ix_alerts_status_time", "status", "time_s", "transaction_id", "model_version"),
    Index("ix_alerts_status_score", "status", "score", "transaction_id", "model_version"),
    Index("ix_alerts_time", "time_s", "transaction_id", "model_version"),
    Index("ix_alerts_score", "score", "transaction_id", "model_version"),
    Index("ix_alerts_assignee", "assignee", "status", "time_s"),
    Index("ix_alerts_card_time", "card_id", "time_s"),
    Index("ix_alerts_case", "case_id", "time_s"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("transaction_id", String(128), primary_key=True),
    # No foreign key to model_versions: the scorer only scores registered models, and the check
    # costs ~30 % of the decision log's insert time (bench/bench_decisions.py).
    Column("model_version", Integer, primary_key=True),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("amount", Float, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False, index=True),
    Column("source_topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    # A keyed model's inputs (0008), only with ``score --log-features``; NULL otherwise.
    Column("features", JSON, nullable=True),
)

labels = Table(
    "labels",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("label_id", String(128), nullable=False, unique=True),
    Column("transaction_id", String(128), nullable=False, index=True),
    Column("is_fraud", SmallInteger, nullable=False),
    Column("source", String(16), nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("reason", Text, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source_topic", String(255), nullable=True),
    Column("source_partition", Integer, nullable=True),
    Column("source_offset", BigInteger, nullable=True),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("topic_id", String(36), nullable=True),  # Kafka's topic id: a recreated topic differs
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Keyed scoring's state (0008), written in the batch's transaction with the offsets.
# Per card: its transactions inside the longest window (times µs, amounts; little-endian
# int64/float64 arrays), owned by the member that owns the card's partition.
card_state = Table(
    "card_state",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
    Column("latest_us", BigInteger, nullable=False),
    Column("times", LargeBinary, nullable=False),
    Column("amounts", LargeBinary, nullable=False),
)

# Every scored keyed transaction's terminal and time: the terminal windows' facts, which come
# from every partition (read D days later, once every partition has passed that time); and its
# card and amount (0009; NULL before), for the desk's view of a card's recent transactions.
keyed_transactions = Table(
    "keyed_transactions",
    metadata,
    Column("transaction_id", String(128), primary_key=True),
    Column("terminal_id", String(128), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("customer_id", String(128), nullable=True),
    Column("amount", Float, nullable=True),
    Index("ix_keyed_transactions_terminal_time", "terminal_id", "time_us"),
    Index("ix_keyed_transactions_customer_time", "customer_id", "time_us"),
)

# Event-time progress per partition of a keyed consumer group: ``clock_us`` the latest event
# time committed, ``bound_us`` a lower bound of the event time of any transaction not yet
# committed (``clock_us`` or the first waiting event, minus the allowed lateness).
stream_clocks = Table(
    "stream_clocks",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("clock_us", BigInteger, nullable=False),
    Column("bound_us", BigInteger, nullable=False),
)

# A keyed card's alerts as one work item (0010, ``store.cases``): the card's open case collects
# its new alerts until an analyst closes it; work state as an alert's; the queue's figures.
cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_id", String(128), nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("assignee", String(64), nullable=True),
    Column("disposition", String(16), nullable=True),
    Column("disposition_note", Text, nullable=True),
    Column("max_score", Float, nullable=False),  # the card's highest alert score in the case
    Column("n_alerts", Integer, nullable=False),
    Column("amount", Float, nullable=False),  # total amount of its alerts: at risk
    Column("first_time_s", Float, nullable=False),  # event-time span of its alerts
    Column("last_time_s", Float, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("revision", Integer, nullable=False, server_default="0"),
    Index("ix_cases_status_score", "status", "max_score", "id"),
    Index("ix_cases_score", "max_score", "id"),
    Index("ix_cases_assignee", "assignee", "status", "max_score", "id"),
    Index("ix_cases_card", "card_id", "id"),
    # at most one case per card is not closed
    Index("ux_cases_open_card", "card_id", unique=True,
          sqlite_where=text("status <> 'closed'"), postgresql_where=text("status <> 'closed'")),
)

# Per keyed consumer group (0011): the retention its card state is written with (never shrinks)
# and the event time from which every card's state is complete for it.
card_retention = Table(
    "card_retention",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("retention_us", BigInteger, nullable=False),
    Column("complete_from_us", BigInteger, nullable=False),
)

# The ops desk (0005): users (argon2 hashes), bearer tokens (sha256 of the token), audit trail.
desk_users = Table(
    "desk_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer | analyst | admin
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Bumped by logout, disable, role change, password reset: older sessions end (0006).
    Column("session_epoch", Integer, nullable=False, server_default="0"),
)

desk_tokens = Table(
    "desk_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("desk_users.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

desk_audit = Table(
    "desk_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("transaction_id", String(128), nullable=True),
    Column("model_version", Integer, nullable=True),
    Column("old", JSON, nullable=True),
    Column("new", JSON, nullable=True),
    Column("case_id", Integer, nullable=True),  # an entry about a case (0010)
    Index("ix_desk_audit_alert", "transaction_id", "model_version"),
    Index("ix_desk_audit_case", "case_id"),
)
