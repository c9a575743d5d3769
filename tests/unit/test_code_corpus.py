"""The bases' `stdlib-code` corpus: the standard library's source with its docstrings cut out, comments
and code kept, so that it shares no text with D (the builtin corpus is those docstrings and licences)."""

from __future__ import annotations

import ast
import random

from kdplatform.data.code_corpus import code_documents, strip_docstrings
from kdplatform.data.corpus import MIN_DOC_CHARS, _license_texts, stdlib_files

SOURCE = '''\
"""Module docstring: the first thing D would read from this file.

It goes on for two lines.
"""
# a comment that stays
import os  # and an inline one


class Greeter:
    """Class docstring."""

    greeting = "hello"  # a plain string, kept

    def greet(self, name: str) -> str:
        """Say hello, with a docstring on its own lines.

        Args:
            name: whom to greet.
        """
        # the body's comment
        return f"{self.greeting}, {name}"

    def only_doc(self):
        """This function's only statement is its docstring."""

    async def fetch(self):
        r"""Raw docstring, é accented."""; return os.sep


def one_line(): """Docstring on the def line."""
'''


def test_docstrings_are_cut_and_comments_and_code_kept():
    out = strip_docstrings(SOURCE)
    tree = ast.parse(out)  # still parses
    assert "docstring" not in out.lower() and '"""' not in out
    for kept in (
        "# a comment that stays",
        "import os  # and an inline one",
        "# the body's comment",
        'greeting = "hello"  # a plain string, kept',
        'return f"{self.greeting}, {name}"',
    ):
        assert kept in out, kept
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            assert ast.get_docstring(node) is None
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert names == {"greet", "only_doc", "fetch", "one_line"}  # every definition is still there
    assert out.startswith("# a comment that stays\n")  # the module docstring took its lines with it


def test_a_file_without_docstrings_is_unchanged():
    code = "x = 1  # one\n\n\ndef f(a):\n    return a + x\n"
    assert strip_docstrings(code) == code


def test_no_builtin_document_appears_in_the_code_corpus():
    """On a sample of the real standard library: no docstring D would take from a sampled file (as the
    builtin corpus reads it, or as the literal stands in the source) is left in the stripped sources,
    nor any licence text."""
    files = random.Random(0).sample(list(stdlib_files()), 40)
    code, docs, literals = [], [], []
    for path in files:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        code.append(strip_docstrings(text))
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= MIN_DOC_CHARS:
                    docs.append(doc)
                    literals.append(ast.get_source_segment(text, node.body[0]))
    blob = "\0".join(code)
    assert len(docs) > 20 and all(lit for lit in literals)
    assert not [d for d in docs if d in blob]
    assert not [lit for lit in literals if lit in blob]
    assert not [t for t in _license_texts() if t in blob]


def test_files_and_hf_sources_go_through_load_documents(tmp_path):
    (tmp_path / "a.txt").write_text("print('a')\n" * 30)
    (tmp_path / "b.txt").write_text("print('b')\n" * 30)
    docs = code_documents(f"files:{tmp_path}", seed=1)
    assert sorted(docs) == sorted(p.read_text() for p in tmp_path.iterdir())


def test_generated_tables_are_left_out_and_the_reader_revision_is_part_of_the_identity():
    """The charmap codecs' tables are not in the corpus (a cp1252 table row is not in any document), and
    the reader's revision is in the identity of a stdlib-code corpus only."""
    from kdplatform.data.code_corpus import STDLIB_CODE_REVISION, corpus_identity, stdlib_code_documents

    docs = stdlib_code_documents()
    assert len(docs) > 300
    assert not [d for d in docs if "'\\x80'     #  0x80 -> UNDEFINED" in d or "decoding_table = (" in d]
    assert corpus_identity({"source": "stdlib-code"}) == {
        "source": "stdlib-code",
        "revision": STDLIB_CODE_REVISION,
    }
    assert corpus_identity({"source": "files:x"}) == {"source": "files:x"}
