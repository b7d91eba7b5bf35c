"""Keyed identity on the record: which card an alert is about, and each keyed transaction's
card and amount (the desk shows a card's recent transactions and groups its alerts).

* ``alerts.card_id``: the keyed event's ``customer_id``; NULL for ULB (v1) alerts.
* ``keyed_transactions.customer_id`` and ``.amount``: NULL for rows written before 0009.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite; no rewrite on PostgreSQL 11+).
    op.add_column("alerts", sa.Column("card_id", sa.String(128), nullable=True))
    op.create_index("ix_alerts_card_time", "alerts", ["card_id", "time_s"])
    op.add_column("keyed_transactions", sa.Column("customer_id", sa.String(128), nullable=True))
    op.add_column("keyed_transactions", sa.Column("amount", sa.Float, nullable=True))
    op.create_index("ix_keyed_transactions_customer_time", "keyed_transactions",
                    ["customer_id", "time_us"])


def downgrade() -> None:
    op.drop_index("ix_keyed_transactions_customer_time", "keyed_transactions")
    with op.batch_alter_table("keyed_transactions") as batch:
        batch.drop_column("amount")
        batch.drop_column("customer_id")
    op.drop_index("ix_alerts_card_time", "alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("card_id")
