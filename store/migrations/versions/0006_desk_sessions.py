"""Desk sessions end server-side: ``desk_users.session_epoch``.

Every session cookie carries its user's epoch at login; a request whose cookie carries an older
epoch is refused. Logout, disable, a role change and a password reset bump the epoch, so every
session issued before them ends (and stays ended after a re-enable).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "desk_users",
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("desk_users") as batch:
        batch.drop_column("session_epoch")
