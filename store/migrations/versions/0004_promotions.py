"""Recorded promotions and training provenance.

``promotions`` is the log of promotion decisions: which candidate was compared with which
production model, on which labelled window, with which numbers and rule, who decided (the gate
or a named person) and the outcome (``promoted``; ``rejected``: failed the gate's rule;
``held``: passed it but was not promoted — ``--promote never``, or another candidate of the
round won). ``models promote`` by a person and the retraining gate both write a row;
``models show`` and ``models list`` read them.
``model_versions.training`` records where a model's training data came from (CSV or stream,
event-time window, label counts); NULL for models registered before this revision.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("training", sa.JSON, nullable=True))
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer, nullable=False, index=True),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.Text, nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comparison", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("promotions")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("training")
