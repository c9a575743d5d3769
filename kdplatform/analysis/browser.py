"""The example browser: find examples of a job by id or text, one example with every scanned model's
outcome on it, and each model's greedy continuation split at its first wrong token.

Token-level splitting reads the dataset's Parquet file and its saved tokenizer when the workdir is at
hand (the `tokenizers` library, no transformers); without them it falls back to comparing the texts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from kdplatform.analysis.groups import role_order
from kdplatform.analysis.reading import Db, read, read_job


def _job_datasets(db: Db, job_id: int) -> list[int]:
    df = read(
        db,
        "SELECT DISTINCT dataset_id FROM runs WHERE job_id = :j AND kind = 'scan' AND dataset_id IS NOT NULL",
        j=job_id,
    )
    return sorted(int(x) for x in df["dataset_id"])


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_examples(
    db: Db, job_id: int, *, text: str | None = None, example_id: int | None = None, limit: int = 50
) -> pd.DataFrame:
    """Examples of the job's scanned dataset by id or by a case-insensitive substring of their text; with
    neither, the members most of the job's models memorized (its example_memorization rows). Columns:
    example_id, dataset_id, split, text, models_memorized, max_match_len."""
    ds = _job_datasets(db, job_id)
    cols = ["example_id", "dataset_id", "split", "text", "models_memorized", "max_match_len"]
    if not ds:
        return pd.DataFrame(columns=cols)
    where, params = ["e.dataset_id IN :ds"], {"ds": ds, "limit": int(limit)}
    if example_id is not None:
        where.append("e.example_id = :eid")
        params["eid"] = int(example_id)
    if text:
        # ESCAPE only where the text needs it: DuckDB's LIKE with an ESCAPE clause scans 3-4x slower.
        escape = " ESCAPE '\\'" if any(c in text for c in "\\%_") else ""
        where.append(f"LOWER(e.text) LIKE :pat{escape}")
        params["pat"] = _like(text)
    if example_id is None and not text:
        # The most memorized members first, from the job's per-example counts, then their text.
        return read_job(
            db,
            job_id,
            """
            WITH m AS (
                SELECT m.dataset_id, m.example_id, m.models_memorized, m.max_match_len
                FROM example_memorization m
                LEFT JOIN examples h
                  ON h.dataset_id = m.dataset_id AND h.example_id = m.example_id AND h.split = 'heldout'
                WHERE m.job_id = :j AND m.dataset_id IN :ds AND m.max_match_len > 0 AND h.example_id IS NULL
                ORDER BY m.models_memorized DESC, m.max_match_len DESC, m.example_id
                LIMIT :limit
            )
            SELECT m.example_id, m.dataset_id, e.split, e.text, m.models_memorized, m.max_match_len
            FROM m JOIN examples e ON e.dataset_id = m.dataset_id AND e.example_id = m.example_id
            ORDER BY m.models_memorized DESC, m.max_match_len DESC, m.example_id
            """,
            **params,
        )
    return read_job(
        db,
        job_id,
        f"""
        WITH hits AS (
            SELECT e.dataset_id, e.example_id, e.split, e.text FROM examples e
            WHERE {" AND ".join(where)} ORDER BY e.example_id LIMIT :limit
        )
        SELECT h.example_id, h.dataset_id, h.split, h.text,
               COALESCE(m.models_memorized, 0) AS models_memorized, m.max_match_len
        FROM hits h
        LEFT JOIN example_memorization m
          ON m.job_id = :j AND m.dataset_id = h.dataset_id AND m.example_id = h.example_id
        ORDER BY h.example_id
        """,
        **params,
    )


def example_detail(
    db: Db, job_id: int, example_id: int, dataset_id: int | None = None
) -> dict[str, Any] | None:
    """One example and every scanned model of the job on it.

    Returns None when the job's datasets have no such example, else a dict: `example` (dataset_id,
    example_id, split, text, prefix_text, suffix_text, zlib_entropy, zlib_bits_per_token, dataset path,
    prefix_len, seq_len) and `models` (DataFrame: run_id, role, seed, objective, temperature, model,
    memorized, match_len, suffix_logprob, suffix_entropy, ppl, kld (vs the teacher), risk, greedy_tokens,
    greedy_text; greedy columns are null where the scan stored no continuation).
    """
    ds = [dataset_id] if dataset_id is not None else _job_datasets(db, job_id)
    if not ds:
        return None
    ex = read(
        db,
        """
        SELECT e.dataset_id, e.example_id, e.split, e.n_tokens, e.text, e.prefix_text, e.suffix_text,
               e.zlib_entropy, e.zlib_bits_per_token, d.path, d.prefix_len, d.seq_len, d.name AS dataset
        FROM examples e JOIN datasets d ON d.id = e.dataset_id
        WHERE e.example_id = :e AND e.dataset_id IN :ds ORDER BY e.dataset_id LIMIT 1
        """,
        e=int(example_id),
        ds=ds,
    )
    if ex.empty:
        return None
    example = ex.iloc[0].to_dict()
    models = read(
        db,
        f"""
        SELECT s.run_id, r.role, r.seed, r.objective, r.temperature, m.name AS model, s.memorized,
               s.match_len, s.suffix_logprob, s.suffix_entropy, s.ppl, k.kld, g.tokens AS greedy_tokens,
               g.text AS greedy_text
        FROM scan_results s
        JOIN runs r ON r.id = s.run_id
        LEFT JOIN models m ON m.id = r.model_id
        LEFT JOIN (SELECT k.run_id, k.example_id, AVG(k.kld) AS kld FROM example_kld k
                   JOIN runs t ON t.id = k.reference_run_id AND t.role = 'teacher'
                   WHERE k.example_id = :e GROUP BY k.run_id, k.example_id) k
               ON k.run_id = s.run_id AND k.example_id = s.example_id
        LEFT JOIN greedy_continuations g ON g.run_id = s.run_id AND g.example_id = s.example_id
        WHERE r.job_id = :j AND s.example_id = :e AND s.dataset_id = :d
        ORDER BY {role_order("r.role")}, r.role, r.objective, r.temperature, r.seed, s.run_id
        """,
        j=job_id,
        e=int(example_id),
        d=int(example["dataset_id"]),
    )
    risk = read(
        db,
        "SELECT k.run_id, k.risk FROM example_risk k JOIN runs r ON r.id = k.run_id "
        "WHERE r.job_id = :j AND k.example_id = :e ORDER BY k.run_id DESC",
        j=job_id,
        e=int(example_id),
    )
    example["risk"] = None if risk.empty else risk["risk"].iloc[0]
    return {"example": example, "models": models}


def true_tokens(dataset_path: str | None, example_id: int) -> list[int] | None:
    """The example's token ids from its dataset's train.parquet, or None when the file is not reachable
    (the database moved without its workdir)."""
    if not dataset_path:
        return None
    path = Path(dataset_path) / "train.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path, filters=[("example_id", "=", int(example_id))])
    except Exception:
        return None
    if t.num_rows == 0:
        return None
    return [int(x) for x in t.column("tokens")[0].as_py()]


_tokenizers: dict[str, Any] = {}


def token_decoder(dataset_path: str | None) -> Callable[[list[int]], str] | None:
    """A decode function from the dataset's saved tokenizer (the `tokenizers` library, no transformers),
    or None when there is none to read."""
    if not dataset_path:
        return None
    path = Path(dataset_path) / "tokenizer" / "tokenizer.json"
    key = str(path)
    if key not in _tokenizers:
        tok = None
        if path.is_file():
            try:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(key)
            except Exception:
                tok = None
        _tokenizers[key] = tok
    tok = _tokenizers[key]
    if tok is None:
        return None
    return lambda ids: tok.decode(list(ids), skip_special_tokens=False)


def token_pieces(ids: list[int], decode: Callable[[list[int]], str]) -> list[str]:
    """The text each token adds: piece k = decode(ids[:k+1]) minus decode(ids[:k]), so the pieces join to
    the decoded text whatever the tokenizer does with spaces (pure)."""
    pieces, prev = [], ""
    for k in range(len(ids)):
        cur = decode(ids[: k + 1])
        pieces.append(cur[len(prev) :] if cur.startswith(prev) else decode([ids[k]]))
        prev = cur
    return pieces


def first_mismatch(truth: list[int], greedy: list[int]) -> int:
    """Index of the first position where the greedy tokens differ from the true suffix (len when none)."""
    for i, (a, b) in enumerate(zip(truth, greedy, strict=False)):
        if a != b:
            return i
    return min(len(truth), len(greedy))


def continuation_parts(
    example: dict[str, Any],
    greedy_tokens: str | None,
    greedy_text: str | None,
    match_len: int,
    decode: Callable[[list[int]], str] | None,
    truth: list[int] | None,
) -> dict[str, Any] | None:
    """Split a model's greedy continuation at its first mismatching token (pure).

    Returns None when no continuation is stored; else matched, mismatch, rest (strings), expected (the true
    token's text at the mismatch), index (the mismatching token's position in the suffix, == match_len
    for a consistent scan) and exact (True when split on tokens, False when only the texts could be
    compared: no tokenizer or dataset file at hand).
    """
    greedy_tokens = greedy_tokens if isinstance(greedy_tokens, str) else None  # NULL arrives as None or NaN
    greedy_text = greedy_text if isinstance(greedy_text, str) else None
    if greedy_tokens is None and greedy_text is None:
        return None
    ids = [int(x) for x in str(greedy_tokens or "").split()]
    prefix_len = int(example.get("prefix_len") or 0)
    seq_len = int(example.get("seq_len") or 0) or None  # the memorization window; truth may be longer
    suffix = truth[prefix_len:seq_len] if truth is not None and prefix_len else None
    if decode is not None and ids:
        pieces = token_pieces(ids, decode)
        k = first_mismatch(suffix, ids) if suffix is not None else min(int(match_len), len(ids))
        expected = None
        if suffix is not None and k < len(suffix):
            expected = token_pieces(suffix[: k + 1], decode)[k]
        return {
            "matched": "".join(pieces[:k]),
            "mismatch": "".join(pieces[k : k + 1]),
            "rest": "".join(pieces[k + 1 :]),
            "expected": expected,
            "index": k,
            "exact": True,
        }
    # No tokenizer: compare characters of the decoded texts; the mismatching "token" runs from the first
    # differing character to the next space.
    text, truth_text = str(greedy_text or ""), str(example.get("suffix_text") or "")
    i = 0
    while i < min(len(text), len(truth_text)) and text[i] == truth_text[i]:
        i += 1
    start = i
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = i
    while end < len(text) and (end == start or not text[end].isspace()):
        end += 1
    exp_end = start
    while exp_end < len(truth_text) and (exp_end == start or not truth_text[exp_end].isspace()):
        exp_end += 1
    return {
        "matched": text[:start],
        "mismatch": text[start:end],
        "rest": text[end:],
        "expected": truth_text[start:exp_end] or None,
        "index": min(int(match_len), len(ids)) if ids else int(match_len),
        "exact": False,
    }
