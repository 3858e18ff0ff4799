"""mail relay: shared pace, quota counts and connection slots

Revision ID: 2a7d50da62e3
Revises: 45a688807c64
Create Date: 2026-11-30 07:48:41.572356

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2a7d50da62e3'
down_revision = '45a688807c64'
branch_labels = None
depends_on = None


def upgrade():
    # Every worker's view of the relay (seminar/notify/relay/store.py): one state row, message
    # counts per bucket of each MAIL_RATE_LIMIT window, one lease per connection slot.
    op.create_table('mail_relay_count',
    sa.Column('limit_key', sa.String(length=40), nullable=False),
    sa.Column('bucket', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('limit_key', 'bucket', name=op.f('pk_mail_relay_count'))
    )
    op.create_table('mail_relay_slot',
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_mail_relay_slot'))
    )
    op.create_table('mail_relay_state',
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('tat', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_mail_relay_state'))
    )


def downgrade():
    op.drop_table('mail_relay_state')
    op.drop_table('mail_relay_slot')
    op.drop_table('mail_relay_count')
