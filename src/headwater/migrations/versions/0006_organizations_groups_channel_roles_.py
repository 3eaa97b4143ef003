"""organizations, groups, channel roles, scoped tokens, audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:07:06.158856
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_action_at", ["action", "at"], unique=False)
        batch_op.create_index("ix_audit_events_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sso_group", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_groups_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_groups_organization_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_groups_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_groups_sso_group"), ["sso_group"], unique=False)

    op.create_table(
        "memberships",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_memberships_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_memberships")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_user_id"), ["user_id"], unique=False)

    op.create_table(
        "api_token_channels",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_api_token_channels_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_api_token_channels_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", "channel_id", name=op.f("pk_api_token_channels")),
    )
    with op.batch_alter_table("api_token_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_token_channels_channel_id"), ["channel_id"], unique=False
        )

    op.create_table(
        "channel_roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (group_id IS NULL)", name=op.f("ck_channel_roles_one_grantee")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_roles_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_channel_roles_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_channel_roles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_roles")),
        sa.UniqueConstraint("channel_id", "group_id", name="uq_channel_roles_channel_group"),
        sa.UniqueConstraint("channel_id", "user_id", name="uq_channel_roles_channel_user"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("channel_roles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channel_roles_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_channel_roles_user_id"), ["user_id"], unique=False)

    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("from_sso", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_members_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_members_user_id"), ["user_id"], unique=False)

    # Tokens from before were all made by signing in: sessions, named by their description.
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="session", nullable=False)
        )
        batch_op.add_column(
            sa.Column("name", sa.String(length=100), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    tokens = sa.table(
        "api_tokens",
        sa.column("name", sa.String()),
        sa.column("description", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    op.execute(tokens.update().values(name=sa.func.substr(tokens.c.description, 1, 100)))
    # A token that never expired lasts 30 days from now (the default sign-in lifetime).
    op.execute(
        tokens.update()
        .where(tokens.c.expires_at.is_(None))
        .values(expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_column("description")

    # A channel's owner was a username: it becomes that user, or the first administrator when
    # no user has that name any more.
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("owner_org_id", sa.Integer(), nullable=True))
    users = sa.table(
        "users",
        sa.column("id", sa.Integer()),
        sa.column("username", sa.String()),
        sa.column("is_admin", sa.Boolean()),
    )
    channels = sa.table(
        "channels",
        sa.column("owner", sa.String()),
        sa.column("owner_user_id", sa.Integer()),
    )
    op.execute(
        channels.update().values(
            owner_user_id=sa.select(users.c.id)
            .where(users.c.username == channels.c.owner)
            .scalar_subquery()
        )
    )
    first_admin = (
        sa.select(users.c.id).where(users.c.is_admin).order_by(users.c.id).limit(1)
    ).scalar_subquery()
    op.execute(
        channels.update()
        .where(channels.c.owner_user_id.is_(None))
        .values(owner_user_id=first_admin)
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channels_owner_org_id"), ["owner_org_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_channels_owner_user_id"), ["owner_user_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_channels_owner_org_id_organizations"),
            "organizations",
            ["owner_org_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_channels_owner_user_id_users"), "users", ["owner_user_id"], ["id"]
        )
        batch_op.drop_column("owner")
        batch_op.create_check_constraint(
            op.f("ck_channels_one_owner"), "(owner_user_id IS NULL) <> (owner_org_id IS NULL)"
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="local", nullable=False)
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("password_hash", existing_type=sa.VARCHAR(), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_users_source"), ["source", "external_id"])

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bytes_expected", sa.BigInteger(), server_default="0", nullable=False)
        )

    _refuse_audit_changes()


def _refuse_audit_changes() -> None:
    """The audit log is append-only: the database itself refuses to change or delete a row."""
    message = "the audit log is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
            )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def downgrade() -> None:
    raise NotImplementedError("0006 is not reversible: owners and tokens changed shape")
