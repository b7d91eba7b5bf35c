"""What the model saw, for the desk: ``alerts.feature_values`` (the raw values of the alert's top
features, ``{feature: value}``) and ``model_versions.feature_ranges`` (the raw features'
training-set ranges). Both NULL for rows written before.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("feature_values", sa.JSON, nullable=True))
    op.add_column("model_versions", sa.Column("feature_ranges", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("feature_ranges")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("feature_values")
