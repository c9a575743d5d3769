"""DuckDB's SQL parser (derived from PostgreSQL's, libpg_query), for checking a query before any database
sees it: its statements, its tokens and a SELECT's syntax tree. The parser runs on a private in-memory
connection with external access off; nothing of the query is executed."""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb


class ParseError(Exception):
    """The parser could not read the query; the message is the parser's."""


@dataclass(frozen=True)
class Statement:
    kind: str
    """duckdb.StatementType's name: SELECT, EXPLAIN, INSERT, TRANSACTION, PRAGMA, ..."""
    query: str
    """The statement's text as the parser returns it (rewritten for PRAGMA and the like)."""


@dataclass(frozen=True)
class Token:
    offset: int
    kind: str
    """keyword, identifier, string_const, numeric_const, operator or comment."""


def statements(sql: str) -> list[Statement]:
    with _parser() as p:
        try:
            return [Statement(s.type.name, s.query) for s in p.extract_statements(sql)]
        except duckdb.Error as e:
            raise ParseError(_first_line(e)) from None


def tokens(sql: str) -> list[Token]:
    return [Token(offset, kind.name) for offset, kind in duckdb.tokenize(sql)]


def syntax_tree(sql: str) -> dict:
    """The parsed SELECT as json_serialize_sql gives it (ParseError for anything but a SELECT)."""
    with _parser() as p:
        tree = json.loads(p.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise ParseError(str(tree.get("error_message", "unknown error")))
    return tree


def _parser():
    return duckdb.connect(config={"enable_external_access": False})


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
