"""Model families and alert explanations.

``model_versions.family`` names the model family (``models.FAMILIES``) of each registered model;
every row registered before this revision is the tutorial's Keras net, ``dense``.
``alerts.explanation`` holds the alert's top contributing features (JSON list of
``{feature, contribution}``), NULL for alerts written before.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("family", sa.String(16), nullable=False,
                                   server_default="dense"))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("explanation", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("explanation")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("family")
