"""The view files: their headers parse and document exactly the columns each view has, the loader keeps
dependency order and refuses what does not fit, and the README and the console read the same headers."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kdplatform.store import db, views


def test_every_file_is_loaded_in_order():
    loaded = views.load()
    assert [v.name for v in loaded] == list(views.ORDER)
    assert {p.stem for p in views.FOLDER.glob("*.sql")} == set(views.ORDER)
    for i, v in enumerate(loaded):
        assert v.summary.startswith("One row per "), v.name
        assert v.relations & set(views.ORDER) <= set(views.ORDER[:i]), v.name
        assert not v.body.startswith("--")
        assert "-- include" not in v.body, v.name
    assert views.get("inheritance").relations >= {"inherited_examples", "run_overlap", "scanned_runs"}


def test_headers_document_each_views_columns(db_url):
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            for v in views.load():
                got = list(conn.execute(text(f"SELECT * FROM {v.name} WHERE 1 = 0")).keys())
                assert v.column_names == got, v.name
    finally:
        engine.dispose()


def test_parse_splits_header_and_body():
    v = views.parse(
        "v",
        "-- One row per thing:\n--   wrapped.\n--\n-- a, b: the pair.\n-- c: one\n--     more.\n"
        "SELECT 1 AS a",
    )
    assert v.summary == "One row per thing: wrapped."
    assert v.columns == (views.Columns(("a", "b"), "the pair."), views.Columns(("c",), "one more."))
    assert v.column_names == ["a", "b", "c"]
    assert v.body == "SELECT 1 AS a"


@pytest.mark.parametrize(
    "bad",
    [
        "SELECT 1",  # no header
        "-- One row per thing.\nSELECT 1",  # no column entries
        "-- One row per thing.\n--\n-- a the column\nSELECT 1",  # not `name: what`
        "-- One row per thing.\n--\n-- a: the column\n",  # no body
    ],
)
def test_parse_refuses_a_malformed_header(bad):
    with pytest.raises(views.ViewFileError):
        views.parse("v", bad)


def _folder(tmp_path, monkeypatch, files: dict[str, str], order: tuple[str, ...]):
    for name, sql in files.items():
        (tmp_path / f"{name}.sql").write_text(f"-- One row per x.\n--\n-- x: x.\n{sql}\n")
    monkeypatch.setattr(views, "FOLDER", tmp_path)
    monkeypatch.setattr(views, "ORDER", order)
    return views.load.__wrapped__


def test_load_refuses_an_order_that_does_not_fit(tmp_path, monkeypatch):
    files = {"base": "SELECT 1 AS x", "top": "WITH t AS (SELECT x FROM base) SELECT x FROM t"}
    assert [v.name for v in _folder(tmp_path, monkeypatch, files, ("base", "top"))()] == ["base", "top"]
    with pytest.raises(views.ViewFileError, match="after them"):
        _folder(tmp_path, monkeypatch, files, ("top", "base"))()
    with pytest.raises(views.ViewFileError, match="does not list"):
        _folder(tmp_path, monkeypatch, files, ("base",))()


def test_includes_expand_to_the_parts_select(tmp_path, monkeypatch):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "one.sql").write_text("-- A shared part.\nSELECT 1 AS x\nUNION ALL SELECT 2\n")
    files = {"v": "WITH p AS (\n    -- include parts/one.sql\n)\nSELECT x FROM p"}
    [v] = _folder(tmp_path, monkeypatch, files, ("v",))()
    assert v.body == "WITH p AS (\n    SELECT 1 AS x\n    UNION ALL SELECT 2\n)\nSELECT x FROM p"
    (tmp_path / "v.sql").write_text("-- One row per x.\n--\n-- x: x.\n-- include parts/two.sql\n")
    with pytest.raises(views.ViewFileError, match="two.sql"):
        views.load.__wrapped__()


def test_create_all_leaves_out_views_over_missing_tables(tmp_path):
    """At 0001 the classifier tables (0002), 0005's tables and scan_results.loss (0005, a COLUMNS_READ),
    eval_results (0007), the canary tables (0008), examples.text_hash and cross_scan_results (0009) and
    0011's tables do not exist yet: recreate makes every view but those over them."""
    engine = db.make_engine(f"duckdb:///{tmp_path / 'v.duckdb'}")
    db.upgrade(engine, "0001")
    with engine.begin() as conn:
        created = views.recreate(conn)
    later = {"classifier_summary", "membership_inference", "extraction_rates", "prefix_memorization_rates"}
    later |= {"eval_scores", "canary_memorization"}
    later |= {
        "text_overlap",
        "scale_hierarchy",
        "cross_scan_examples",
        "cross_scan_overlap",
        "zlib_correlation",
    }
    later |= {"approximate_memorization_rates"}  # 0011's table (membership_inference also reads 0011's)
    assert created == [n for n in views.ORDER if n not in later]
    assert views.COLUMNS_READ["membership_inference"] == (("scan_results", "loss"),)
    assert views.COLUMNS_READ["text_overlap"] == (("examples", "text_hash"),)
    head = db.make_engine(f"duckdb:///{tmp_path / 'head.duckdb'}")
    db.upgrade(head)
    with head.begin() as conn:
        assert views.recreate(conn) == list(views.ORDER)


def test_readme_view_table_is_rendered_from_the_headers(repo_root):
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    table = views.markdown_table()
    assert table.startswith("| view | what |\n")
    assert table in readme, "README's view table is stale: paste views.markdown_table() over it"
    assert readme.count("| view | what |") == 1
    after = readme[readme.index(table) + len(table) :]
    assert not after.startswith("|"), "README's view table has rows that no view file has"


def test_console_surface_lists_the_views_from_their_files():
    from kdplatform import sql

    assert list(sql.SURFACE)[: len(views.ORDER)] == list(views.ORDER)
    for v in views.load():
        assert sql.SURFACE[v.name] == v.summary
    assert {"jobs", "runs", "scan_results", "classifier_trials"} <= set(sql.SURFACE)
