"""Keyed scoring across model changes: how far back each consumer group's card state reaches.

* ``card_retention``: per group, the card retention its card state is written with (the longest
  card window of any keyed model it has scored with, plus the allowed lateness; it never
  shrinks) and the event time from which every card's state is complete for it (after a switch
  to longer windows, older events read the missing rows from ``keyed_transactions``).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_retention",
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("retention_us", sa.BigInteger, nullable=False),
        sa.Column("complete_from_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("card_retention")
