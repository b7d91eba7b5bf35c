"""Initial schema: model registry, alerts, confusion counts, consumer offsets.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("threshold_policy", sa.String(64), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("artifact_dir", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
    )
    op.create_index("ix_model_versions_stage", "model_versions", ["stage"])
    op.create_table(
        "alerts",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("model_version", sa.Integer, sa.ForeignKey("model_versions.version"),
                  primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("time_s", sa.Float, nullable=False),
        sa.Column("is_fraud", sa.SmallInteger, nullable=True),
        sa.Column("source_topic", sa.String(255), nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
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
    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in ("consumer_offsets", "confusion_counts", "alerts", "model_versions"):
        op.drop_table(name)
