"""Decision log and labels; counts computed from them instead of stored; topic ids on offsets.

``confusion_counts`` (added to per batch, so a redelivered event counted twice) is dropped:
counts are now a query over ``decisions`` ⋈ ``labels``, idempotent by construction. The alerts'
``is_fraud`` copy is dropped too: an alert's truth is its transaction's current label.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.Integer, primary_key=True),  # no FK: see store/tables.py
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_topic", sa.String(255), nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decisions_event_time", "decisions", ["event_time"])
    op.create_table(
        "labels",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("label_id", sa.String(128), nullable=False, unique=True),
        sa.Column("transaction_id", sa.String(128), nullable=False),
        sa.Column("is_fraud", sa.SmallInteger, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_topic", sa.String(255), nullable=True),
        sa.Column("source_partition", sa.Integer, nullable=True),
        sa.Column("source_offset", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_labels_transaction_id", "labels", ["transaction_id"])
    op.create_index("ix_labels_observed_at", "labels", ["observed_at"])
    op.drop_table("confusion_counts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("is_fraud")
    with op.batch_alter_table("consumer_offsets") as batch:
        batch.add_column(sa.Column("topic_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumer_offsets") as batch:
        batch.drop_column("topic_id")
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("is_fraud", sa.SmallInteger, nullable=True))
    op.create_table(
        "confusion_counts",
        sa.Column("model_version", sa.Integer, sa.ForeignKey("model_versions.version"),
                  primary_key=True),
        sa.Column("tp", sa.BigInteger, nullable=False),
        sa.Column("fp", sa.BigInteger, nullable=False),
        sa.Column("tn", sa.BigInteger, nullable=False),
        sa.Column("fn", sa.BigInteger, nullable=False),
        sa.Column("unlabelled", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.drop_table("labels")
    op.drop_table("decisions")
