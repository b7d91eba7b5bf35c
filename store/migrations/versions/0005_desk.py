"""The fraud-ops desk: alert work state, users, API tokens, audit trail, queue indexes.

* ``alerts`` gains its work state: ``status`` (``open`` → ``claimed`` → ``closed``),
  ``assignee``, ``disposition`` (``confirmed_fraud`` / ``false_positive`` / ``inconclusive``),
  ``disposition_note``, ``updated_at`` and ``revision`` (bumped by every change: optimistic
  concurrency for two analysts acting at once). Existing alerts are ``open``.
* ``desk_users``: name, role (``viewer`` / ``analyst`` / ``admin``), argon2 password hash.
* ``desk_tokens``: bearer API tokens, stored as sha256 of the token, revocable.
* ``desk_audit``: every state change: who, what, when, old → new.
* Queue indexes: keyset pagination in both orders (newest / highest score), with and without
  a status filter, and by assignee.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEY = ["transaction_id", "model_version"]
INDEXES = {
    "ix_alerts_status_time": ["status", "time_s", *KEY],
    "ix_alerts_status_score": ["status", "score", *KEY],
    "ix_alerts_time": ["time_s", *KEY],
    "ix_alerts_score": ["score", *KEY],
    "ix_alerts_assignee": ["assignee", "status", "time_s"],
}


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite; no rewrite on PostgreSQL 11+).
    op.add_column(
        "alerts", sa.Column("status", sa.String(16), nullable=False, server_default="open")
    )
    op.add_column("alerts", sa.Column("assignee", sa.String(64), nullable=True))
    op.add_column("alerts", sa.Column("disposition", sa.String(16), nullable=True))
    op.add_column("alerts", sa.Column("disposition_note", sa.Text, nullable=True))
    op.add_column("alerts", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
    for name, columns in INDEXES.items():
        op.create_index(name, "alerts", columns)
    op.create_table(
        "desk_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "desk_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("desk_users.id"), nullable=False, index=True
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "desk_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.String(128), nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("old", sa.JSON, nullable=True),
        sa.Column("new", sa.JSON, nullable=True),
    )
    op.create_index("ix_desk_audit_alert", "desk_audit", ["transaction_id", "model_version"])
    op.create_index("ix_desk_audit_at", "desk_audit", ["at"])


def downgrade() -> None:
    op.drop_table("desk_audit")
    op.drop_table("desk_tokens")
    op.drop_table("desk_users")
    for name in INDEXES:
        op.drop_index(name, "alerts")
    with op.batch_alter_table("alerts") as batch:
        for column in (
            "revision",
            "updated_at",
            "disposition_note",
            "disposition",
            "assignee",
            "status",
        ):
            batch.drop_column(column)
