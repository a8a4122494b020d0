"""Alembic environment of the tickets schema.

Run through ``ivr.tickets.store.upgrade_schema(url)``, which hands over an open connection in
``config.attributes["connection"]``; there is no alembic.ini. To write a new revision, put a
file in versions/ by hand (copy 0001's layout) with ``down_revision`` set to the last one.
"""

from __future__ import annotations

from alembic import context

from ivr.tickets.model import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the tickets migrations through ivr.tickets.store.upgrade_schema(url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite can alter tables only by copying them; batch mode does that for later revisions.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
