"""Cases: a keyed card's alerts gathered into one work item (the desk's card queue).

* ``cases``: one row per case — the card, its work state (as an alert's: ``status`` open →
  claimed → closed, ``assignee``, ``disposition``, ``revision``), and the figures the queue
  sorts and shows (``max_score``, ``n_alerts``, ``amount`` at risk, event-time span,
  ``opened_at``). At most one case per card is not closed (a partial unique index).
* ``alerts.case_id``: the case an alert belongs to (NULL for ULB (v1) alerts).
* ``desk_audit.case_id``: an audit entry about a case.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NOT_CLOSED = sa.text("status <> 'closed'")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("disposition", sa.String(16), nullable=True),
        sa.Column("disposition_note", sa.Text, nullable=True),
        sa.Column("max_score", sa.Float, nullable=False),
        sa.Column("n_alerts", sa.Integer, nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("first_time_s", sa.Float, nullable=False),
        sa.Column("last_time_s", sa.Float, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_cases_status_score", "cases", ["status", "max_score", "id"])
    op.create_index("ix_cases_score", "cases", ["max_score", "id"])
    op.create_index("ix_cases_assignee", "cases", ["assignee", "status", "max_score", "id"])
    op.create_index("ix_cases_card", "cases", ["card_id", "id"])
    op.create_index("ux_cases_open_card", "cases", ["card_id"], unique=True,
                    sqlite_where=NOT_CLOSED, postgresql_where=NOT_CLOSED)
    op.add_column("alerts", sa.Column("case_id", sa.Integer, nullable=True))
    op.create_index("ix_alerts_case", "alerts", ["case_id", "time_s"])
    op.add_column("desk_audit", sa.Column("case_id", sa.Integer, nullable=True))
    op.create_index("ix_desk_audit_case", "desk_audit", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_desk_audit_case", "desk_audit")
    with op.batch_alter_table("desk_audit") as batch:
        batch.drop_column("case_id")
    op.drop_index("ix_alerts_case", "alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("case_id")
    op.drop_table("cases")
