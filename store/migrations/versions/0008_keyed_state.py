"""Keyed scoring's state: per-card windows, the terminal facts, event-time clocks, and the
feature vector behind a keyed decision.

* ``card_state``: per (group, card) the card's transactions inside the longest window.
* ``keyed_transactions``: every scored keyed transaction's terminal and time.
* ``stream_clocks``: per (group, topic, partition) the committed event-time clock and the lower
  bound of what is still to come.
* ``decisions.features``: the model inputs behind a keyed score (JSON), with
  ``score --log-features`` (an alert keeps them in ``alerts.feature_values``, 0007).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_state",
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("latest_us", sa.BigInteger, nullable=False),
        sa.Column("times", sa.LargeBinary, nullable=False),
        sa.Column("amounts", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "keyed_transactions",
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("terminal_id", sa.String(128), nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_keyed_transactions_terminal_time", "keyed_transactions",
                    ["terminal_id", "time_us"])
    op.create_table(
        "stream_clocks",
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("clock_us", sa.BigInteger, nullable=False),
        sa.Column("bound_us", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("features", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("features")
    op.drop_table("stream_clocks")
    op.drop_index("ix_keyed_transactions_terminal_time", "keyed_transactions")
    op.drop_table("keyed_transactions")
    op.drop_table("card_state")
