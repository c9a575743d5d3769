"""The statement check of the read-only SQL surface, done with DuckDB's own parser (store.sqlparse; derived
from PostgreSQL's, libpg_query): one statement, of a read-only type, calling no function that reads files, the
network or settings. No regular expressions: what the database would split and classify is what is checked.

The same parser serves PostgreSQL: its lexer follows PostgreSQL's for E'' strings, dollar quotes, nested
comments and identifiers, and a query it cannot read is refused (never passed through). PostgreSQL also
runs the query alone in a read-only transaction, through the extended protocol, which cannot carry a
second statement (store.pg_readonly).
"""

from __future__ import annotations

from kdplatform.store import sqlparse

READ_ONLY_TYPES = ("SELECT", "EXPLAIN")
EXPLAIN_WORDS = {"explain", "analyze", "analyse", "verbose"}
DENIED_PREFIXES = (
    "read_",
    "parquet_",
    "pg_",
    "lo_",
    "dblink",
    "sqlite_",
    "postgres_",
    "mysql_",
    "iceberg_",
    "delta_",
    "httpfs",
    "write_",
    "pragma_",
)
DENIED_SUFFIXES = ("_scan",)
DENIED_NAMES = {
    "glob",
    "sniff_csv",
    "from_json_file",
    "duckdb_secrets",
    "query",
    "query_table",
    "current_setting",
    "set_config",
    "getvariable",
    "setvariable",
    "load_extension",
    "json_execute_serialized_sql",
}
PATH_CHARS = ("/", "\\", ":", "~")


class QueryRefused(Exception):
    """A query the console will not run; the message says why, for the user."""


def check_query(query: str) -> str:
    """Raise QueryRefused unless `query` is one read-only SELECT/WITH/EXPLAIN statement; return its text."""
    if not query or not query.strip():
        raise QueryRefused("empty query: write a SELECT over the documented views and tables")
    stmts = _statements(query)
    if not stmts:
        raise QueryRefused("empty query: write a SELECT over the documented views and tables")
    if len(stmts) > 1:
        raise QueryRefused(
            f"only one statement is allowed; this is {len(stmts)} (remove the ';' between them)"
        )
    if stmts[0].query.strip() not in query:
        raise QueryRefused(
            "only SELECT queries are allowed; PRAGMA and the other statements DuckDB's parser rewrites "
            "into another query are not"
        )
    _check_statement(stmts[0])
    return query.strip()


def _statements(query: str) -> list[sqlparse.Statement]:
    try:
        return sqlparse.statements(query)
    except sqlparse.ParseError as e:
        raise QueryRefused(f"the query does not parse: {e}") from None


def _check_statement(stmt: sqlparse.Statement) -> None:
    if stmt.kind not in READ_ONLY_TYPES:
        raise QueryRefused(
            f"only SELECT queries are allowed (SELECT, WITH ... SELECT or EXPLAIN SELECT); "
            f"this is a {stmt.kind} statement"
        )
    if stmt.kind == "EXPLAIN":
        inner = _statements(_explained(stmt.query))
        if len(inner) != 1 or inner[0].kind != "SELECT":
            raise QueryRefused("EXPLAIN is allowed only of a SELECT query")
        stmt = inner[0]
    _check_tree(stmt.query)


def _explained(sql: str) -> str:
    """The statement after EXPLAIN [ANALYZE], found with the parser's tokenizer (whose tokens span any
    comment that follows them)."""
    tokens = sqlparse.tokens(sql)
    ends = [t.offset for t in tokens[1:]] + [len(sql)]
    for token, end in zip(tokens, ends, strict=True):
        text = sql[token.offset : end].lower()
        if token.kind == "keyword" and any(_is_word(text, w) for w in EXPLAIN_WORDS):
            continue
        if text.startswith("("):
            raise QueryRefused("EXPLAIN (options) is not supported; write EXPLAIN [ANALYZE] SELECT ...")
        return sql[token.offset :]
    return ""


def _is_word(text: str, word: str) -> bool:
    after = text[len(word) : len(word) + 1]
    return text.startswith(word) and not (after.isalnum() or after == "_")


def _check_tree(sql: str) -> None:
    """Walk the SELECT's syntax tree: every function and every table it names."""
    try:
        tree = sqlparse.syntax_tree(sql)
    except sqlparse.ParseError as e:
        raise QueryRefused(f"the query does not parse: {e}") from None
    stack: list = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            _check_node(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_node(node: dict) -> None:
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in DENIED_NAMES or name.startswith(DENIED_PREFIXES) or name.endswith(DENIED_SUFFIXES):
            raise QueryRefused(f"{name}() reads files, the network or settings and is not allowed here")
    elif node.get("type") == "BASE_TABLE":
        name = str(node.get("table_name", ""))
        if any(c in name for c in PATH_CHARS) or "." in name:
            raise QueryRefused(
                f"reading files by path is not allowed ({name!r}); query the documented views and tables"
            )
