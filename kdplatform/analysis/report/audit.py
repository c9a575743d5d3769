"""The report's "Scan audit" section: per scanned model, how many of its one-pass scan's decisions were
re-decided by float32 generate() (near-ties and a random sample), how many it had got differently, and
its memorized count before and after (scan_audits, one row per scan)."""

from __future__ import annotations

from kdplatform.analysis.groups import ROLE_ORDER
from kdplatform.analysis.reading import Db, read
from kdplatform.analysis.report.markdown import config, num, table


def scan_audit(db: Db, job_id: int) -> list[str]:
    """The section's lines; none for a job whose scans were not audited."""
    df = read(
        db,
        f"""
        SELECT r.role, r.seed, r.objective, r.temperature, a.scan_dtype, a.threshold, a.examples,
               a.checked, a.near_ties, a.sampled, a.disagreements, a.memorized_before, a.memorized_after
        FROM scan_audits a JOIN runs r ON r.id = a.run_id
        WHERE r.job_id = :j AND r.status = 'done'
        ORDER BY {ROLE_ORDER}, r.role, r.objective, r.temperature, r.seed, r.id
        """,
        j=job_id,
    )
    if df.empty:
        return []
    rows = [
        [
            r.role,
            config(r.objective, r.temperature),
            num(r.seed),
            f"{r.scan_dtype} (< {num(float(r.threshold))})",
            int(r.examples),
            f"{int(r.checked)} ({int(r.near_ties)} near-ties, {int(r.sampled)} sampled)",
            int(r.disagreements),
            f"{int(r.memorized_before)} → {int(r.memorized_after)}",
        ]
        for r in df.itertuples()
    ]
    return [
        "## Scan audit",
        "",
        "Each scan decides memorization in one teacher-forced pass; the examples whose deciding logit margin "
        "is under the threshold (near-ties), and a random sample of the rest, are decided again by float32 "
        "`generate()`, whose outcome is the one stored.",
        "",
        table(
            [
                "model",
                "config",
                "seed",
                "scan dtype (margin)",
                "examples",
                "audited",
                "disagreements",
                "memorized before → after",
            ],
            rows,
        ),
        "",
    ]
