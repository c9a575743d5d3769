"""The store's errors, in a module of their own so that every store module can raise them without
importing the connection factory."""

from __future__ import annotations


class DatabaseError(Exception):
    """A database that cannot be used; the message says which URL and what to do."""


class DatabaseUnavailable(Exception):
    """No database, no schema yet, or a job held the write lock past the wait; the message says what to do."""
