"""Example browser: find an example by id or by text; see its prefix, true suffix, and each model's greedy
continuation with the first mismatching token highlighted, its match length and per-model features."""

from __future__ import annotations

import common
import streamlit as st
from common import esc

from kdplatform.analysis import browser

job_id, name = common.scanned_job("Example browser")

MATCHED = "background:#e6f4ea"
MISMATCH = "background:#f8b4b4;font-weight:bold;text-decoration:underline"
REST = "color:#9a9a9a"
BOX = (
    "font-family:monospace;white-space:pre-wrap;border:1px solid #ddd;border-radius:4px;padding:6px;"
    "margin:2px 0"
)

if "ex_id" not in st.session_state and (linked := st.query_params.get("example")):
    st.session_state["ex_id"] = str(linked)  # ?example=ID opens that example
with st.form("search"):
    c = st.columns([3, 1, 1])
    text = c[0].text_input("Text contains", key="ex_text", placeholder="a phrase from the example")
    ident = c[1].text_input("or example id", key="ex_id")
    limit = c[2].number_input("at most", 10, 500, 50, step=10, key="ex_limit")
    st.form_submit_button("Search")

example_id = None
if ident.strip():
    try:
        example_id = int(ident.strip())
    except ValueError:
        st.warning(f"Example ids are whole numbers; {ident!r} is not one.")
hits = common.load(
    "search_examples", job_id, text=text.strip() or None, example_id=example_id, limit=int(limit)
)
if not text.strip() and example_id is None:
    st.caption("No search yet: the examples most of this job's models memorized (then the longest matches).")
if hits.empty:
    st.info("No example matches." if (text.strip() or example_id is not None) else "No scanned examples yet.")
    st.stop()
st.dataframe(
    hits.assign(text=hits["text"].str.slice(0, 160)),
    hide_index=True,
    column_config={"models_memorized": st.column_config.NumberColumn(format="%d")},
)
choice = st.selectbox(
    "Example",
    list(hits["example_id"].astype(int)),
    key="ex_choice",
    format_func=lambda i: (
        f"{i}: " + str(hits.loc[hits["example_id"] == i, "text"].iloc[0])[:80].replace("\n", " ")
    ),
)
detail = common.load("example_detail", job_id, int(choice))
if detail is None:
    st.info(f"Example {choice} is not in this job's scanned dataset.")
    st.stop()
ex, models = detail["example"], detail["models"]

st.subheader(f"Example {ex['example_id']}")
c = st.columns(4)
c[0].metric("zlib entropy", f"{ex['zlib_entropy']:,}")
c[1].metric("zlib bits per token", f"{ex['zlib_bits_per_token']:.2f}")
c[2].metric("models that memorized it", f"{int(models['memorized'].sum())} of {len(models)}")
risk = ex.get("risk")
c[3].metric("classifier risk", "–" if risk is None or risk != risk else f"{risk:.3f}")
st.markdown(
    f"<div style='{BOX}'><span style='{REST}'>{esc(ex['prefix_text'])}</span>"
    f"<span style='font-weight:bold'>{esc(ex['suffix_text'])}</span></div>",
    unsafe_allow_html=True,
)
st.caption(f"Prefix (grey, {ex['prefix_len']} tokens) and true suffix (bold), dataset {ex['dataset']}.")

st.markdown("**Per model**")
st.dataframe(
    models.drop(columns=["greedy_tokens", "greedy_text"]),
    hide_index=True,
    column_config={
        c: st.column_config.NumberColumn(format="%.3f")
        for c in ("suffix_logprob", "suffix_entropy", "ppl", "kld")
    },
)

st.markdown("**Greedy continuations**")
decode = browser.token_decoder(ex.get("path"))
truth = browser.true_tokens(ex.get("path"), int(ex["example_id"])) if decode is not None else None
suffix_len = int(ex["seq_len"]) - int(ex["prefix_len"])
for m in models.itertuples():
    head = f"**{esc(m.role)}** s{m.seed} (#{m.run_id}) · match {m.match_len}/{suffix_len}" + (
        " · memorized" if m.memorized else ""
    )
    parts = browser.continuation_parts(ex, m.greedy_tokens, m.greedy_text, int(m.match_len), decode, truth)
    if parts is None:
        st.markdown(head + " · no continuation stored (the scan keeps those with long matches)")
        continue
    if parts["mismatch"]:
        note = f"first mismatch at suffix token {parts['index']}"
        if parts["expected"] is not None:
            note += f", true token {esc(repr(parts['expected']))}"
    else:
        note = "reproduces the suffix"
    st.markdown(
        f"{head} · {note}<div style='{BOX}'><span style='{MATCHED}'>{esc(parts['matched'])}</span>"
        f"<span style='{MISMATCH}' data-kdp='mismatch'>{esc(parts['mismatch'])}</span>"
        f"<span style='{REST}'>{esc(parts['rest'])}</span></div>",
        unsafe_allow_html=True,
    )
    if not parts["exact"]:
        st.caption("Split on characters: the dataset's tokenizer or token file is not reachable from here.")
st.caption(
    "Green: tokens equal to the true suffix; red: the first token that differs; grey: the rest, which the "
    "scan stores as teacher-forced argmax predictions (equal to free greedy decoding only up to the first "
    "mismatch)."
)
