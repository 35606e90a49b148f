"""The error-analysis page: one self-contained HTML file (inline CSS, inline SVG, embedded thumbnails).

`write_report(rows, path, title=...)` writes a page with
- the F1, precision, recall and TP/FP/FN/TN counts (from amlc.metric, never recomputed here);
- a per-entity table (rows, TP, FP, FN, TN, precision, recall, F1) and a bar chart of the same;
- errors by kind (see `classify`), overall and per entity;
- a gallery of failures: thumbnail, entity, truth versus prediction, and the raw model or OCR text.
Nothing is fetched when the page is opened: no scripts, no external stylesheets, fonts or images;
thumbnails are small JPEGs embedded as base64. The metric numbers are printed with 4 decimals and
carry `data-metric` / `data-entity` attributes, so a test can read them back from the rendered DOM.

`rows` (a DataFrame, one row per scored test row):
    index, entity_name, truth, prediction   required ("" for an empty truth or prediction)
    raw          optional: the model's or OCR engine's text (falls back to raw_prediction)
    reason       optional: why a prediction is empty, e.g. "missing image"
    image_path   optional: the image file (relative paths are under images_dir)
    image_link   optional: with images_dir, the image is images_dir/<base name of the link>
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from amlc.errors import InputError
from amlc.metric import cell_text, outcome, per_entity, value_pair
from amlc.sanity import check_value

KINDS: tuple[str, ...] = ("correct", "wrong number", "wrong unit", "formatting miss", "abstained",
                          "false alarm", "rejected by parser", "unmatchable truth", "missing image")
KIND_COLORS = {"correct": "#2f9e62", "wrong number": "#ef8a2f", "wrong unit": "#d64545",
               "formatting miss": "#c9a227", "abstained": "#8a93a3", "false alarm": "#b7478f",
               "rejected by parser": "#7b55d6", "unmatchable truth": "#5b6b7f", "missing image": "#3a74c4"}
KIND_HELP = {
    "correct": "counted right by the metric (an answer that matches, or a blank where the truth is blank)",
    "wrong number": "same unit as the truth, another number",
    "wrong unit": "a valid answer in a unit other than the truth's (or one the entity does not allow)",
    "formatting miss": "the truth's number and unit, written otherwise (\"1400.0 milligram\" for "
                       "\"1400 milligram\"): right reading, wrong text",
    "abstained": "blank where the truth is not",
    "false alarm": "an answer where the truth is blank",
    "rejected by parser": "the organisers' parser rejects the answer (\"1400 mg\", \"[1.0, 2.0] volt\"): "
                          "postprocessing.py would have fixed or blanked it",
    "unmatchable truth": "the truth is not one valid value (a range such as \"10 kilogram to 15 kilogram\", "
                         "a unit the organisers do not accept): no valid answer can equal it",
    "missing image": "the image could not be downloaded or read",
}
METRIC_COLORS = {"precision": "#5b7fe8", "recall": "#f0a63a", "f1": "#2f9e62"}
SHORT = {"maximum_weight_recommendation": "max weight", "item_weight": "item weight",
         "item_volume": "item volume"}
MISSING_IMAGE = re.compile(r"\b(missing|no|unreadable|broken|undownloadable) image\b|"
                           r"\bimage (missing|not found|unreadable|not downloaded)\b", re.I)


def classify(prediction: object, truth: object, entity: str, reason: object = "",
             acceptable: bool = False) -> str:
    """The kind of one row's outcome; one of KINDS. Pure.

    "correct" is exactly what amlc.metric counts as TP or TN; every other row is a failure, and the
    first rule that applies names it: missing image (reason says so), abstained (blank prediction),
    rejected by parser, false alarm (answer, blank truth), unmatchable truth, formatting miss (same
    number and unit as a truth), wrong number (same unit as a truth), wrong unit. With `acceptable`,
    the truth may list answers separated by "|".
    """
    out, gt = cell_text(prediction), cell_text(truth)
    if outcome(out, gt, acceptable) in ("tp", "tn"):
        return "correct"
    if MISSING_IMAGE.search(cell_text(reason)):
        return "missing image"
    if not out:
        return "abstained"
    if check_value(out) is not None:
        return "rejected by parser"
    if not gt:
        return "false alarm"
    answers = [a.strip() for a in gt.split("|")] if acceptable else [gt]
    truths = [value_pair(a) for a in answers if check_value(a) is None]
    if not truths:
        return "unmatchable truth"
    pred = value_pair(out)
    if pred in truths:  # same number and unit, written otherwise ("500 gram" vs "500.0 gram")
        return "formatting miss"
    if any(pred is not None and t is not None and pred[1] == t[1] for t in truths):
        return "wrong number"
    return "wrong unit"


# ------------------------------------------------------------------------------------------ helpers

def _fmt(x: float) -> str:
    return f"{float(x):.4f}"


def _esc(x: object) -> str:
    return html.escape(cell_text(x), quote=True)


def _thumbnail(path: Path, size: int = 300, quality: int = 72) -> str | None:
    """A small JPEG as a data: URI, or None when the file is absent or unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale, much faster
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=quality, optimize=True)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image_path(row: Mapping[str, Any], images_dir: Path | None) -> Path | None:
    p = cell_text(row.get("image_path"))
    if p:
        path = Path(p)
        return path if path.is_absolute() or images_dir is None else images_dir / path
    link = cell_text(row.get("image_link"))
    if link and images_dir is not None:
        return images_dir / link.rsplit("/", 1)[-1].split("?", 1)[0]
    return None


def _entity_table(rows: pd.DataFrame, metrics: Mapping[str, Any] | None, acceptable: bool) -> pd.DataFrame:
    if metrics is not None and metrics.get("per_entity"):
        table = pd.DataFrame(metrics["per_entity"])
    else:
        table = per_entity(rows, "prediction", "truth", acceptable)
    need = {"entity_name", "tp", "fp", "fn", "tn", "rows", "precision", "recall", "f1"}
    if not need <= set(table.columns):
        raise InputError(f"metrics per_entity lacks {', '.join(sorted(need - set(table.columns)))}")
    return table


# ------------------------------------------------------------------------------------------- pieces

CSS = """
:root { --ink:#1c2230; --muted:#5e6878; --line:#e2e6ee; --bg:#f5f6fa; --accent:#2f5fe0; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 "DejaVu Sans", "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1220px; margin: 0 auto; padding: 30px 28px 60px; }
header h1 { font-size: 27px; margin: 0 0 4px; letter-spacing: -0.01em; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 19px; margin: 34px 0 12px; }
h2 small { font-weight: normal; color: var(--muted); font-size: 14px; margin-left: 6px; }
.cards { display: grid; grid-template-columns: 1.4fr repeat(6, 1fr); gap: 12px; margin-top: 22px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 12px 16px;
        box-shadow: 0 1px 2px rgba(16, 24, 40, .05); }
.card .label { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: .07em; }
.card .value { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card.hero { background: linear-gradient(135deg, #2f5fe0, #4b7bf0); border: none; color: #fff; }
.card.hero .label { color: rgba(255, 255, 255, .8); }
.card.hero .value { font-size: 34px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 14px 16px;
         box-shadow: 0 1px 2px rgba(16, 24, 40, .05); }
.panel.chart { margin-top: 14px; overflow-x: auto; }
.split { display: grid; grid-template-columns: 1.25fr 1fr; gap: 16px; align-items: start; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { padding: 7px 9px; text-align: right; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
tbody tr:nth-child(even) td { background: #fafbfd; }
tr.all td { font-weight: 700; border-top: 2px solid var(--ink); border-bottom: none; background: #fff; }
td.f1 { font-weight: 700; }
.meter { display: inline-block; width: 46px; height: 6px; border-radius: 3px; background: #e9edf3;
         vertical-align: middle; margin-left: 8px; overflow: hidden; }
.meter i { display: block; height: 100%; background: #2f9e62; }
.legend { display: flex; gap: 14px; font-size: 12.5px; color: var(--muted); margin: 0 0 6px; flex-wrap: wrap; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px;
                       margin-right: 5px; background: var(--c); vertical-align: -1px; }
.kinds td.n { width: 64px; }
.bar { height: 14px; border-radius: 4px; min-width: 2px; }
.matrix td, .matrix th { text-align: center; padding: 6px 6px; }
.matrix th:first-child, .matrix td:first-child { text-align: left; }
.matrix th { white-space: normal; line-height: 1.2; vertical-align: bottom; }
.muted { color: var(--muted); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; }
.shot { background: #fff; border: 1px solid var(--line); border-radius: 12px; overflow: hidden;
        box-shadow: 0 1px 2px rgba(16, 24, 40, .05); display: flex; flex-direction: column; }
.shot .img { height: 180px; background: #eef0f5; display: flex; align-items: center; justify-content: center; }
.shot img { max-width: 100%; max-height: 180px; display: block; }
.shot .noimg { color: var(--muted); font-size: 13px; }
.shot .body { padding: 10px 12px 12px; font-size: 13px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 11.5px; font-weight: 700;
         color: #fff; background: var(--c); }
.meta { color: var(--muted); font-size: 12px; margin-left: 6px; }
.ent { font-weight: 600; font-size: 13px; margin-top: 5px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.kv { display: grid; grid-template-columns: 40px 1fr; gap: 1px 8px; margin-top: 7px; }
.kv .k { color: var(--muted); font-size: 12px; padding-top: 1px; }
.kv .v { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; word-break: break-word; }
.kv .v.bad { color: #b42318; }
.kv .v.good { color: #1d7a4a; }
pre.raw { white-space: pre-wrap; word-break: break-word; background: #f4f6fa; border-radius: 6px; margin: 8px 0 0;
          padding: 6px 8px; max-height: 84px; overflow: hidden; font: 11.5px/1.4 "DejaVu Sans Mono", Menlo, monospace;
          color: #3a4350; }
footer { margin-top: 36px; color: var(--muted); font-size: 12.5px; }
"""


def _cards(all_row: Mapping[str, Any], n_fail: int) -> str:
    items = [("hero", "F1", _fmt(all_row["f1"]), "f1"),
             ("", "Precision", _fmt(all_row["precision"]), "precision"),
             ("", "Recall", _fmt(all_row["recall"]), "recall")]
    items += [("", k.upper(), str(int(all_row[k])), k) for k in ("tp", "fp", "fn", "tn")]
    out = []
    for cls, label, value, key in items:
        out.append(f'<div class="card {cls}"><div class="label">{label}</div>'
                   f'<div class="value" data-metric="{key}" data-entity="ALL">{value}</div></div>')
    return '<section class="cards">' + "".join(out) + "</section>"


def _entity_rows(table: pd.DataFrame) -> str:
    body = []
    for r in table.to_dict(orient="records"):
        ent = r["entity_name"]
        cls = ' class="all"' if ent == "ALL" else ""
        name = "all entities" if ent == "ALL" else ent
        cells = [f"<td>{_esc(name)}</td>", f'<td data-metric="rows" data-entity="{_esc(ent)}">{int(r["rows"])}</td>']
        cells += [f'<td data-metric="{k}" data-entity="{_esc(ent)}">{int(r[k])}</td>' for k in ("tp", "fp", "fn", "tn")]
        cells += [f'<td data-metric="{k}" data-entity="{_esc(ent)}">{_fmt(r[k])}</td>' for k in ("precision", "recall")]
        width = max(0.0, min(1.0, float(r["f1"]))) * 100
        cells.append(f'<td class="f1"><span data-metric="f1" data-entity="{_esc(ent)}">{_fmt(r["f1"])}</span>'
                     f'<span class="meter"><i style="width:{width:.1f}%"></i></span></td>')
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("entity", "rows", "TP", "FP", "FN", "TN", "precision", "recall", "F1"))
    return f'<table class="entities"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _bar_chart(table: pd.DataFrame) -> str:
    """Grouped vertical bars (precision, recall, F1) per entity, as inline SVG."""
    recs = table.to_dict(orient="records")
    left, top, plot_h, group_w, bar_w = 40, 14, 190, 124, 26
    width, height = left + group_w * len(recs) + 10, top + plot_h + 44
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="precision, recall and F1 per entity" '
             f'style="max-width:100%;height:auto;font-family:inherit;font-size:12.5px">']
    base = top + plot_h
    for k in range(5):
        y = base - plot_h * k / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                     f'stroke="{"#c9ced8" if k == 0 else "#e8ebf1"}"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#5e6878">{k / 4:g}</text>')
    for i, r in enumerate(recs):
        gx = left + i * group_w + (group_w - 3 * bar_w - 8) / 2
        ent = r["entity_name"]
        if ent == "ALL":
            parts.append(f'<rect x="{left + i * group_w + 4}" y="{top - 6}" width="{group_w - 8}" '
                         f'height="{plot_h + 40}" rx="8" fill="#f1f4fb"/>')
        for j, key in enumerate(("precision", "recall", "f1")):
            v = max(0.0, min(1.0, float(r[key])))
            h = max(v * plot_h, 1.0)
            x = gx + j * (bar_w + 4)
            parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" rx="3" '
                         f'fill="{METRIC_COLORS[key]}"><title>{_esc(ent)} {key} {_fmt(v)}</title></rect>')
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                         f'font-size="10.5" fill="#3a4350">{v:.2f}</text>')
        name = "all entities" if ent == "ALL" else SHORT.get(ent, ent)
        weight = ' font-weight="700"' if ent == "ALL" else ""
        parts.append(f'<text x="{left + (i + 0.5) * group_w:.1f}" y="{base + 20}" text-anchor="middle" '
                     f'fill="#1c2230"{weight}><title>{_esc(ent)}</title>{_esc(name)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span style="--c:{c}">{k if k != "f1" else "F1"}</span>' for k, c in METRIC_COLORS.items())
    return f'<div class="legend">{legend}</div>' + "".join(parts)


def _kinds_table(kinds: pd.Series) -> str:
    counts = kinds.value_counts()
    total = max(1, len(kinds))
    top = max(1, int(counts.max())) if len(counts) else 1
    body = []
    for k in KINDS:
        n = int(counts.get(k, 0))
        w = 100 * n / top
        body.append(f'<tr><td><span class="badge" style="--c:{KIND_COLORS[k]}">{k}</span></td>'
                    f'<td class="n" data-kind="{k}">{n}</td><td class="n muted">{100 * n / total:.1f}%</td>'
                    f'<td style="width:45%"><div class="bar" style="width:{w:.1f}%;background:{KIND_COLORS[k]}" '
                    f'title="{_esc(KIND_HELP[k])}"></div></td></tr>')
    return f'<table class="kinds"><tbody>{"".join(body)}</tbody></table>'


def _kind_matrix(df: pd.DataFrame) -> str:
    ct = pd.crosstab(df["entity_name"], df["kind"])
    head = "".join(f"<th>{k}</th>" for k in KINDS)
    body = []
    errors = ct.drop(columns=["correct"], errors="ignore").to_numpy()
    peak = max(1, int(errors.max())) if errors.size else 1
    for ent in ct.index:
        cells = []
        for k in KINDS:
            n = int(ct.at[ent, k]) if k in ct.columns else 0
            if n and k != "correct":
                alpha = 0.15 + 0.75 * n / peak
                style = f' style="background:{KIND_COLORS[k]}{int(alpha * 255):02x};color:{"#fff" if alpha > .55 else "#1c2230"}"'
            else:
                style = ' class="muted"' if not n else ""
            cells.append(f"<td{style}>{n}</td>")
        body.append(f"<tr><td>{_esc(SHORT.get(ent, ent))}</td>{''.join(cells)}</tr>")
    return (f'<table class="matrix"><thead><tr><th>entity</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _pick_gallery(fails: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Up to `limit` failures, taken in turn from each kind so that every kind is shown."""
    queues = {k: list(part.sort_values("index").index) for k, part in fails.groupby("kind")}
    order = []
    while len(order) < limit and any(queues.values()):
        for k in KINDS:
            if queues.get(k) and len(order) < limit:
                order.append(queues[k].pop(0))
    return fails.loc[order]


def _gallery(fails: pd.DataFrame, images_dir: Path | None, thumb_px: int) -> str:
    cache: dict[Path, str | None] = {}
    cards = []
    for row in fails.to_dict(orient="records"):
        path = _image_path(row, images_dir)
        uri = None
        if path is not None:
            if path not in cache:
                cache[path] = _thumbnail(path, thumb_px)
            uri = cache[path]
        img = (f'<img src="{uri}" alt="image of row {_esc(row["index"])}" loading="lazy">' if uri
               else '<span class="noimg">no image</span>')
        kind = row["kind"]
        raw = cell_text(row.get("raw"))
        raw_html = f'<pre class="raw" title="{_esc(raw)}">{_esc(raw[:300])}</pre>' if raw else ""
        reason = cell_text(row.get("reason"))
        reason_html = f'<div class="k">why</div><div class="v">{_esc(reason)}</div>' if reason else ""
        cards.append(
            f'<div class="shot" data-index="{_esc(row["index"])}"><div class="img">{img}</div><div class="body">'
            f'<span class="badge" style="--c:{KIND_COLORS[kind]}">{kind}</span>'
            f'<span class="meta">#{_esc(row["index"])}</span>'
            f'<div class="ent" title="{_esc(row["entity_name"])}">{_esc(row["entity_name"])}</div>'
            f'<div class="kv"><div class="k">truth</div><div class="v good">{_esc(row["truth"]) or "<i>(empty)</i>"}</div>'
            f'<div class="k">pred</div><div class="v bad">{_esc(row["prediction"]) or "<i>(empty)</i>"}</div>'
            f'{reason_html}</div>{raw_html}</div></div>')
    return f'<div class="gallery">{"".join(cards)}</div>'


# --------------------------------------------------------------------------------------------- page

def build_html(rows: pd.DataFrame, *, title: str, metrics: Mapping[str, Any] | None = None,
               images_dir: str | os.PathLike | None = None, max_gallery: int = 60,
               acceptable: bool | None = None, thumb_px: int = 300) -> str:
    """The report page as a string (see the module docstring for `rows`)."""
    missing = [c for c in ("index", "entity_name", "truth", "prediction") if c not in rows.columns]
    if missing:
        raise InputError(f"report rows lack column(s) {', '.join(missing)}")
    if acceptable is None:
        acceptable = bool(metrics and str(metrics.get("scoring", "")).startswith("acceptable"))
    df = rows.copy()
    for c in ("truth", "prediction", "raw", "reason"):
        if c in df.columns:
            df[c] = df[c].map(cell_text)
    if "raw" not in df.columns and "raw_prediction" in df.columns:
        df["raw"] = df["raw_prediction"].map(cell_text)
    reasons = df["reason"] if "reason" in df.columns else pd.Series("", index=df.index)
    df["kind"] = [classify(p, t, e, r, acceptable) for p, t, e, r in
                  zip(df["prediction"], df["truth"], df["entity_name"], reasons)]
    table = _entity_table(df, metrics, acceptable)
    all_row = table[table["entity_name"] == "ALL"].iloc[0].to_dict()
    fails = df[df["kind"] != "correct"]
    shown = _pick_gallery(fails, max_gallery)
    img_dir = Path(images_dir) if images_dir is not None else None
    n_images = df["image_link"].nunique() if "image_link" in df.columns else None
    sub = f"{len(df)} rows" + (f" · {n_images} images" if n_images else "") + \
        f" · scoring: {'acceptable answers (number and unit)' if acceptable else 'exact match, as on the leaderboard'}"
    gallery_note = (f"showing {len(shown)} of {len(fails)}, taken in turn from each kind" if len(fails) > len(shown)
                    else f"all {len(fails)}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>{CSS}</style></head>
<body><main>
<header><h1>{_esc(title)}</h1><p>{_esc(sub)}</p></header>
{_cards(all_row, len(fails))}
<h2>Per entity</h2>
<div class="panel">{_entity_rows(table)}</div>
<div class="panel chart">{_bar_chart(table)}</div>
<h2>Errors by kind <small>{len(fails)} of {len(df)} rows are failures</small></h2>
<div class="split"><div class="panel">{_kinds_table(df["kind"])}</div><div class="panel">{_kind_matrix(df)}</div></div>
<h2>Failures <small>{gallery_note}</small></h2>
{_gallery(shown, img_dir, thumb_px) if len(shown) else '<p class="muted">No failures.</p>'}
<footer>Written by amlc.report. F1 as the competition scores it (amlc.metric): TP answer equals truth;
FP wrong answer, or an answer where the truth is blank; FN blank where the truth is not.</footer>
</main></body></html>
"""


def write_report(rows: pd.DataFrame, path: str | os.PathLike, *, title: str,
                 metrics: Mapping[str, Any] | None = None, images_dir: str | os.PathLike | None = None,
                 max_gallery: int = 60, acceptable: bool | None = None) -> Path:
    """Write the self-contained error-analysis page to `path` (atomically) and return the path.

    metrics: evaluate's metrics dict (its `per_entity` records and `scoring`) to print; without it
    the numbers come from amlc.metric.per_entity on `rows`. acceptable: the truth lists answers
    separated by "|" (dims_dev); by default read from metrics["scoring"].
    """
    from amlc.tables import write_text

    return write_text(path, build_html(rows, title=title, metrics=metrics, images_dir=images_dir,
                                       max_gallery=max_gallery, acceptable=acceptable))


def kind_counts(rows: pd.DataFrame, acceptable: bool = False) -> dict[str, int]:
    """How many rows of each kind (all KINDS present, zeros included)."""
    reasons: Sequence[object] = rows["reason"] if "reason" in rows.columns else [""] * len(rows)
    kinds = [classify(p, t, e, r, acceptable) for p, t, e, r in
             zip(rows["prediction"], rows["truth"], rows["entity_name"], reasons)]
    return {k: kinds.count(k) for k in KINDS}
