"""Alembic environment: runs on the connection kdplatform.store.db hands over (DuckDB or PostgreSQL)."""

from alembic import context
from sqlalchemy import create_engine

from kdplatform.store.materialized import include_name
from kdplatform.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        with create_engine(url).begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, include_name=include_name)
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, include_name=include_name)
    context.run_migrations()


run_migrations_online()
