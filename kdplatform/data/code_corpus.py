"""The pretraining corpus of the bases: a text source disjoint from D.

`stdlib-code` is the Python standard library's source with every docstring cut out (comments and code
kept): the same files the builtin corpus reads its docstrings from (`corpus.stdlib_files`), so D (those
docstrings and the licence texts) and the bases' corpus share no text, and every machine has both
offline. `files:PATH` and `hf:NAME` read through `corpus.load_documents`.
"""

from __future__ import annotations

import ast
from typing import Any

from kdplatform.data.corpus import load_documents, shuffled_prefix, stdlib_files

STDLIB_CODE = "stdlib-code"
STDLIB_CODE_REVISION = 2
"""What the `stdlib-code` reader takes, versioned: part of the bases' identity and of the cached windows'
key, so a change here (2: generated tables left out) retrains bases instead of reusing stale ones."""
MIN_CODE_CHARS = 200
GENERATED = ("encodings/",)
"""Generated lookup tables, not code anyone writes: the charmap codecs' 256-entry byte/character tables
are 13 % of the library's bytes and would teach the bases table rows instead of code and comments."""
_DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstring_nodes(tree: ast.Module) -> list[tuple[ast.Expr, bool]]:
    """Every docstring statement, with whether it is its owner's only statement (then a `pass` stands in
    for it, so the block still parses)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, _DOC_OWNERS) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.append((first, len(node.body) == 1 and not isinstance(node, ast.Module)))
    return out


def strip_docstrings(source: str) -> str:
    """`source` without its module, class and function docstrings, every other byte kept.

    The spans come from `ast` (line and UTF-8 byte column of each docstring) and are cut from the
    original text, since `ast.unparse` would drop the comments. A docstring alone on its lines takes its
    lines with it; one that was its block's only statement becomes `pass`. Raises SyntaxError when
    `source` does not parse, or (never seen in the standard library) when the result would not.
    """
    tree = ast.parse(source)
    data = source.encode("utf-8")
    lines = data.splitlines(keepends=True)  # bytes split on \n, \r\n and \r only, as the tokenizer does
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    for node, only in sorted(_docstring_nodes(tree), key=lambda t: t[0].lineno, reverse=True):
        s = starts[node.lineno - 1] + node.col_offset
        e = starts[node.end_lineno - 1] + node.end_col_offset
        line_start, line_end = starts[node.lineno - 1], starts[node.end_lineno]
        alone = not data[line_start:s].strip() and not data[e:line_end].strip()
        if only:
            data = data[:s] + b"pass" + data[e:]
        elif alone:
            data = data[:line_start] + data[line_end:]
        else:
            data = data[:s] + data[e:].lstrip(b" \t;")
    out = data.decode("utf-8")
    ast.parse(out)
    return out


def corpus_identity(corpus: dict[str, Any]) -> dict[str, Any]:
    """A `pretrain.corpus` section (as dumped) with the reader's revision for `stdlib-code`, whose text
    comes from code rather than the spec; other sources are their section alone."""
    return corpus | {"revision": STDLIB_CODE_REVISION} if corpus["source"] == STDLIB_CODE else corpus


def stdlib_code_documents() -> list[str]:
    """Each standard-library source file without its docstrings, in a stable order; files that are
    left with less than MIN_CODE_CHARS characters, or that do not parse, are skipped."""
    docs = []
    for path in stdlib_files():
        if any(part in path.as_posix() for part in GENERATED):
            continue
        try:
            code = strip_docstrings(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        if len(code.strip()) >= MIN_CODE_CHARS:
            docs.append(code)
    return docs


def code_documents(source: str, *, seed: int = 0, max_chars: int = 20_000_000, **options: Any) -> list[str]:
    """The documents of a pretraining source, shuffled by `seed`, capped at about `max_chars` characters;
    `options` (hf_config, split, text_field) go to `load_documents` for the `files:` and `hf:` sources."""
    if source != STDLIB_CODE:
        return load_documents(source, seed=seed, max_chars=max_chars, **options)
    return shuffled_prefix(stdlib_code_documents(), seed, max_chars)
