"""``satds report``: one self-contained HTML page about the whole catalog.

Everything is embedded: plots as PNG data URIs, previews downscaled and re-encoded as JPEG data URIs, so
the file can be mailed or archived alone. To keep it a sane size, at most ``max_previews`` flagged scans
(errors first, then warnings) and ``gallery`` scans per dataset are embedded; the other previews are
linked by path, and each dataset lists at most ``max_rows`` flagged scans and info flags (the table has
them all). No JavaScript: sections, tables and ``<details>`` only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import Catalog
from .colors import class_hex
from .flags import CHECKS, SEVERITIES

SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}

CSS = """
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#dde3ea; --bg:#f6f8fa; --card:#ffffff;
        --error:#c62828; --warning:#b86e00; --info:#1e6fb8; --accent:#2b5d8a; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif; color:var(--fg); background:var(--bg); }
main { max-width:1320px; margin:0 auto; padding:24px 28px 60px; }
header.top { background:#1f3b57; color:#fff; padding:22px 28px; }
header.top h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header.top p { margin:0; color:#c9d6e3; font-size:13px; }
header.top code { background:rgba(255,255,255,.14); color:#fff; }
h2 { font-size:20px; margin:34px 0 10px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:15px; margin:20px 0 8px; color:var(--accent); }
nav.toc { margin:14px 0 0; font-size:13px; }
nav.toc a { display:inline-block; margin:0 10px 6px 0; color:var(--accent); text-decoration:none; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); gap:12px; margin:18px 0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .n { font-size:26px; font-weight:650; }
.card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card.error .n { color:var(--error); } .card.warning .n { color:var(--warning); } .card.info .n { color:var(--info); }
table { border-collapse:collapse; background:var(--card); margin:6px 0 14px; font-size:13px; width:auto; max-width:100%; }
th, td { border:1px solid var(--line); padding:4px 9px; text-align:left; vertical-align:top; }
th { background:#eef2f6; font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr:nth-child(even) td { background:#fafbfc; }
.sev { display:inline-block; padding:1px 7px; border-radius:10px; font-size:11px; font-weight:650; color:#fff; text-transform:uppercase; }
.sev.error { background:var(--error); } .sev.warning { background:#ef8f00; } .sev.info { background:var(--info); }
.swatch { display:inline-block; width:12px; height:12px; border-radius:3px; border:1px solid rgba(0,0,0,.35); vertical-align:-1px; margin-right:6px; }
section.dataset { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:4px 22px 18px; margin:22px 0; }
section.dataset h2 { border:none; margin-top:16px; }
.meta { color:var(--muted); font-size:13px; margin:-4px 0 10px; }
figure { margin:10px 0 16px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; background:#fff; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
.flagged { border-top:1px solid var(--line); padding:12px 0; }
img.preview { display:block; max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
.flagged ul { margin:4px 0; padding-left:18px; } .flagged li { margin:3px 0; }
.gallery { display:grid; grid-template-columns:repeat(auto-fill,minmax(420px,1fr)); gap:12px; }
.muted { color:var(--muted); } code { font-size:12px; background:#eef2f6; padding:1px 4px; border-radius:4px; }
details summary { cursor:pointer; color:var(--accent); margin:6px 0; }
.twocol { display:flex; flex-wrap:wrap; gap:24px; align-items:flex-start; }
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def preview_uri(path: str | os.PathLike, width: int, quality: int = 82) -> str | None:
    """A preview PNG downscaled to ``width`` pixels and re-encoded as a JPEG data URI."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.width > width:
                im = im.resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality, optimize=True)
    except (OSError, ValueError):
        return None
    return _data_uri(buf.getvalue(), "image/jpeg")


def _table(headers: list[str], rows: list[list[Any]], *, num: set[int] | None = None, cls: str = "", raw: set[int] | None = None) -> str:
    num = num or set()
    raw = raw or set()
    h = "".join(f'<th class="num">{esc(x)}</th>' if i in num else f"<th>{esc(x)}</th>" for i, x in enumerate(headers))
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            content = v if i in raw else esc(v)
            cells.append(f'<td class="num">{content}</td>' if i in num else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _sev(s: str) -> str:
    return f'<span class="sev {esc(s)}">{esc(s)}</span>'


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return ""
    return f"{f:.{digits}g}"


@dataclass
class ReportData:
    catalog: str
    datasets: list[dict[str, Any]]
    scans: list[dict[str, Any]]
    classes: list[dict[str, Any]]  # per dataset x class: n, present, volumes of the scans that have it
    totals: dict[str, int]
    failures: list[dict[str, Any]]
    splits: list[tuple[str, str, int]]
    flags: list[dict[str, Any]]
    qc_run: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)


def gather(catalog: Catalog) -> ReportData:
    con = catalog.connect()
    try:
        def rows(sql: str) -> list[dict[str, Any]]:
            return con.sql(sql).to_arrow_table().to_pylist()

        datasets = rows("SELECT dataset, title, modality, region, licence, url, root, cases, scans, failures, ingested_at FROM datasets ORDER BY dataset")
        scans = rows("SELECT scan_id, dataset, case_id, modality, channel_modalities, shape, spacing, affine, axcodes, status, normalised_image FROM scans ORDER BY dataset, scan_id")
        # Aggregated in DuckDB: a big catalog has millions of annotation rows.
        classes = rows(
            """SELECT dataset, class_id, any_value(class_name) AS name, bool_or(derived) AS derived, count(*) AS n,
                      count(*) FILTER (WHERE voxels > 0) AS present,
                      list(volume_ml) FILTER (WHERE voxels > 0 AND volume_ml > 0) AS vols
               FROM annotations GROUP BY dataset, class_id"""
        )
        totals = dict(
            zip(
                ("annotations", "present", "classes"),
                con.execute("SELECT count(*), count(*) FILTER (WHERE voxels > 0), count(DISTINCT class_id) FILTER (WHERE voxels > 0) FROM annotations").fetchall()[0],
            )
        )
        failures = rows("SELECT dataset, \"case\", scan_id, file, stage, error_type, error FROM failures ORDER BY dataset, \"case\"")
        splits = [tuple(r) for r in con.execute("SELECT dataset, split, count(*) FROM splits GROUP BY ALL ORDER BY dataset, split").fetchall()]
        flags = rows("SELECT * FROM qc_flags")
        run = None
        if flags:
            rid = flags[0]["run_id"]
            got = con.sql("SELECT run_id, started_at, finished_at, config FROM runs WHERE run_id = $rid", params={"rid": rid}).to_arrow_table().to_pylist()
            run = got[0] if got else {"run_id": rid}
    finally:
        con.close()
    return ReportData(str(catalog.root), datasets, scans, classes, totals, failures, splits, flags, run)


def write_report(
    catalog: Catalog,
    out: str | os.PathLike,
    *,
    max_previews: int = 120,
    gallery: int = 2,
    preview_width: int = 900,
    thumb_width: int = 520,
    max_rows: int = 300,
) -> Path:
    """Write the report to ``out`` (an .html file); returns its path."""
    from . import plots
    from .check_geometry import world_spacing

    d = gather(catalog)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    ds_keys = [r["dataset"] for r in d.datasets]
    scans_by_ds: dict[str, list[dict]] = defaultdict(list)
    for s in d.scans:
        scans_by_ds[s["dataset"]].append(s)
    classes_by_ds: dict[str, list[dict]] = defaultdict(list)
    for c in d.classes:
        classes_by_ds[c["dataset"]].append(c)
    preview_of = {f["scan_id"]: f["preview"] for f in d.flags if f.get("preview")}
    real_flags = [f for f in d.flags if f["check"] != "preview"]
    flags_by_ds: dict[str, list[dict]] = defaultdict(list)
    for f in real_flags:
        flags_by_ds[f["dataset"]].append(f)
    splits_by_ds: dict[str, dict[str, int]] = defaultdict(dict)
    for ds, sp, n in d.splits:
        splits_by_ds[ds][sp] = n
    failures_by_ds = Counter(f["dataset"] for f in d.failures)

    # Which flagged scans get an embedded preview: worst severity first, then most flags.
    worst: dict[str, tuple[int, int]] = {}
    for f in real_flags:
        if f["severity"] == "info":
            continue
        r, n = worst.get(f["scan_id"], (9, 0))
        worst[f["scan_id"]] = (min(r, SEV_RANK[f["severity"]]), n + 1)
    embed_flagged = {sid for sid, _ in sorted(worst.items(), key=lambda kv: (kv[1][0], -kv[1][1], kv[0]))[:max_previews] if preview_of.get(sid)}

    sev_counts = Counter(f["severity"] for f in real_flags)
    parts: list[str] = []
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    run_txt = f"QC run <code>{esc(d.qc_run['run_id'])}</code>" if d.qc_run else "no QC run yet: run <code>satds qc</code> for previews and flags"
    parts.append(f'<header class="top"><h1>satds collection report</h1><p>catalog <code>{esc(d.catalog)}</code> · generated {esc(now)} · {run_txt}</p></header>')
    parts.append("<main>")
    toc = "".join(f'<a href="#ds-{esc(k)}">{esc(k)}</a>' for k in ds_keys)
    parts.append(f'<nav class="toc"><a href="#summary"><b>summary</b></a><a href="#flags"><b>QC flags</b></a><a href="#failures"><b>failures</b></a><a href="#splits"><b>splits</b></a><a href="#checks"><b>checks</b></a> · datasets: {toc or "<span class=muted>none</span>"}</nav>')

    # ---- summary
    cards = [
        ("datasets", len(ds_keys), ""),
        ("scans", len(d.scans), ""),
        ("built scans", sum(1 for s in d.scans if s.get("status") == "built"), ""),
        ("classes", d.totals.get("classes", 0), ""),
        ("annotations", d.totals.get("annotations", 0), ""),
        ("present", d.totals.get("present", 0), ""),
        ("failures", len(d.failures), "error" if d.failures else ""),
        *[(f"{s} flags", sev_counts.get(s, 0), s) for s in SEVERITIES],
    ]
    parts.append('<section id="summary"><h2>Summary</h2><div class="cards">')
    parts += [f'<div class="card {c}"><div class="n">{n}</div><div class="l">{esc(label)}</div></div>' for label, n, c in cards]
    parts.append("</div>")
    if ds_keys:
        fl = {k: dict(Counter(f["severity"] for f in flags_by_ds.get(k, []))) for k in ds_keys}
        png = plots.overview({k: len(scans_by_ds.get(k, [])) for k in ds_keys}, fl)
        parts.append(f'<figure><img class="plot" alt="scans and QC flags per dataset" src="{_data_uri(png, "image/png")}"><figcaption>Scans and QC flags (errors, warnings) per dataset.</figcaption></figure>')
    rows = []
    for k, meta in zip(ds_keys, d.datasets):
        sc = scans_by_ds.get(k, [])
        fc = Counter(f["severity"] for f in flags_by_ds.get(k, []))
        rows.append([f'<a href="#ds-{esc(k)}">{esc(k)}</a>', esc(meta.get("modality")), esc(meta.get("region")), len(sc), sum(1 for s in sc if s.get("status") == "built"), sum(1 for c in classes_by_ds.get(k, []) if c["present"]), failures_by_ds.get(k, 0), fc.get("error", 0), fc.get("warning", 0), fc.get("info", 0)])
    parts.append(_table(["dataset", "modality", "region", "scans", "built", "classes", "failures", "errors", "warnings", "info"], rows, num={3, 4, 5, 6, 7, 8, 9}, raw={0, 1, 2}, cls="datasets"))
    parts.append("</section>")

    # ---- flags overview
    parts.append('<section id="flags"><h2>QC flags</h2>')
    if not d.flags:
        parts.append('<p class="muted">No QC flags in the catalog: run <code>satds qc</code>.</p>')
    else:
        by_check = Counter((f["check"], f["severity"]) for f in real_flags)
        checks = sorted({c for c, _ in by_check})
        rows = [[f"<code>{esc(c)}</code>", esc(CHECKS.get(c, "")), *[by_check.get((c, s), 0) for s in SEVERITIES]] for c in checks]
        parts.append(_table(["check", "what it finds", *SEVERITIES], rows, num={2, 3, 4}, raw={0, 1}, cls="flag-summary") if rows else '<p class="muted">No check fired.</p>')
        parts.append(f'<p class="muted">{len(preview_of)} scan preview(s). Flagged scans are shown in their dataset\'s section with their preview ({len(embed_flagged)} embedded, at most {max_previews}).</p>')
    parts.append("</section>")

    # ---- per dataset
    embedded = 0
    for meta in d.datasets:
        k = meta["dataset"]
        sc = scans_by_ds.get(k, [])
        parts.append(f'<section class="dataset" id="ds-{esc(k)}" data-dataset="{esc(k)}"><h2>{esc(k)}</h2>')
        bits = [meta.get("title"), meta.get("modality"), meta.get("region"), f"licence {meta.get('licence')}" if meta.get("licence") else None]
        parts.append(f'<p class="meta">{" · ".join(esc(b) for b in bits if b)}<br>root <code>{esc(meta.get("root"))}</code></p>')
        sp = splits_by_ds.get(k, {})
        facts = [["scans", len(sc)], ["built", sum(1 for s in sc if s.get("status") == "built")], ["failures", failures_by_ds.get(k, 0)], *[[f"split: {s}", n] for s, n in sorted(sp.items())]]
        # classes
        by_class = {c["class_id"]: {"name": c["name"] or c["class_id"], "derived": bool(c["derived"]), "n": int(c["n"]), "present": int(c["present"]), "vol": [float(v) for v in (c["vols"] or [])]} for c in classes_by_ds.get(k, [])}
        crow = []
        for cid, c in sorted(by_class.items(), key=lambda kv: kv[1]["name"].lower()):
            crow.append([f'<span class="swatch" style="background:{class_hex(cid)}"></span>{esc(c["name"])}' + (' <span class="muted">(derived)</span>' if c["derived"] else ""), c["present"], c["n"] - c["present"], _fmt(np.median(c["vol"])) if c["vol"] else "", _fmt(min(c["vol"])) if c["vol"] else "", _fmt(max(c["vol"])) if c["vol"] else ""])
        parts.append('<div class="twocol"><div><h3>Scans and splits</h3>' + _table(["", "count"], facts, num={1}, cls="facts") + "</div>")
        parts.append("<div><h3>Classes</h3>" + (_table(["class", "present", "absent", "median ml", "min ml", "max ml"], crow, num={1, 2, 3, 4, 5}, raw={0}, cls="classes") if crow else '<p class="muted">no annotations</p>') + "</div></div>")
        # plots
        spac = []
        for s in sc:
            if s.get("affine") and len(s["affine"]) == 16:
                spac.append(world_spacing(np.asarray(s["affine"], dtype=float).reshape(4, 4)))
        vols = {cid: (c["name"], c["vol"]) for cid, c in by_class.items() if c["vol"] and not c["derived"]}
        png = plots.dataset_plots(np.array(spac) if spac else np.zeros((0, 3)), vols)
        parts.append(f'<figure><img class="plot" alt="spacing and volume distributions of {esc(k)}" src="{_data_uri(png, "image/png")}"><figcaption>Source voxel spacing along the world axes (bar: median) and class volumes on the source grid.</figcaption></figure>')
        # flags
        fl = sorted(flags_by_ds.get(k, []), key=lambda f: (SEV_RANK[f["severity"]], f["scan_id"], f["check"], f.get("class_id") or ""))
        serious = [f for f in fl if f["severity"] != "info"]
        info = [f for f in fl if f["severity"] == "info"]
        parts.append(f"<h3>QC flags ({len(serious)} errors/warnings, {len(info)} info)</h3>")
        if serious:
            by_scan: dict[str, list[dict]] = defaultdict(list)
            for f in serious:
                by_scan[f["scan_id"]].append(f)
            order = sorted(by_scan, key=lambda s: (min(SEV_RANK[f["severity"]] for f in by_scan[s]), s))
            for sid in order[:max_rows]:
                items = "".join(f"<li>{_sev(f['severity'])} <code>{esc(f['check'])}</code> {esc(f['message'])}</li>" for f in by_scan[sid])
                pv = preview_of.get(sid)
                img = '<p class="muted">no preview (scan not built)</p>'
                if pv and sid in embed_flagged:
                    uri = preview_uri(pv, preview_width)
                    if uri:
                        img = f'<img class="preview" alt="preview of {esc(sid)}" src="{uri}">'
                        embedded += 1
                elif pv:
                    img = f'<p class="muted">preview not embedded (limit {max_previews}): <a href="{esc(Path(pv).resolve().as_uri())}">{esc(pv)}</a></p>'
                parts.append(f'<div class="flagged" data-scan="{esc(sid)}"><b>{esc(sid)}</b><ul>{items}</ul>{img}</div>')
            if len(order) > max_rows:
                parts.append(f'<p class="muted">{len(order) - max_rows} more flagged scan(s) not listed: <code>SELECT * FROM qc_flags WHERE dataset = \'{esc(k)}\'</code></p>')
        else:
            parts.append('<p class="muted">No errors or warnings.</p>')
        if info:
            rows = [[esc(f["scan_id"]), f"<code>{esc(f['check'])}</code>", esc(f["message"])] for f in info[:max_rows]]
            more = f'<p class="muted">{len(info) - max_rows} more not listed.</p>' if len(info) > max_rows else ""
            parts.append(f"<details><summary>{len(info)} info flag(s)</summary>{_table(['scan', 'check', 'message'], rows, raw={0, 1, 2}, cls='info-flags')}{more}</details>")
        # gallery: a few previews of unflagged scans so every dataset shows what its data look like
        shown = [s["scan_id"] for s in sc if s["scan_id"] not in embed_flagged and preview_of.get(s["scan_id"])][:gallery]
        if shown:
            figs = []
            for sid in shown:
                uri = preview_uri(preview_of[sid], thumb_width, quality=78)
                if uri:
                    figs.append(f'<figure><img class="preview" alt="preview of {esc(sid)}" src="{uri}"><figcaption>{esc(sid)}</figcaption></figure>')
                    embedded += 1
            parts.append("<h3>Sample previews</h3><div class=\"gallery\">" + "".join(figs) + "</div>")
        parts.append("</section>")

    # ---- failures
    parts.append(f'<section id="failures"><h2>Failures ({len(d.failures)})</h2>')
    if d.failures:
        rows = [[f["dataset"], f["case"], f["stage"], f["error_type"], f["file"], f["error"]] for f in d.failures]
        parts.append(_table(["dataset", "case", "stage", "type", "file", "error"], rows, cls="failures"))
    else:
        parts.append('<p class="muted">No failures: every case was ingested and built.</p>')
    parts.append("</section>")

    # ---- splits
    parts.append('<section id="splits"><h2>Split sizes</h2>')
    if d.splits:
        names = sorted({s for _, s, _ in d.splits})
        rows = [[k, *[splits_by_ds.get(k, {}).get(s, 0) for s in names], sum(splits_by_ds.get(k, {}).values())] for k in ds_keys]
        totals = ["all", *[sum(splits_by_ds.get(k, {}).get(s, 0) for k in ds_keys) for s in names], sum(n for _, _, n in d.splits)]
        parts.append(_table(["dataset", *names, "total"], rows + [totals], num=set(range(1, len(names) + 2)), cls="splits"))
    else:
        parts.append('<p class="muted">No split yet: run <code>satds split</code>.</p>')
    parts.append("</section>")

    # ---- checks
    parts.append('<section id="checks"><h2>What the checks mean</h2>')
    parts.append(_table(["check", "finds"], [[f"<code>{esc(c)}</code>", esc(t)] for c, t in CHECKS.items()], raw={0, 1}, cls="checks"))
    parts.append('<p class="muted">Thresholds and their reasons: docs/qc.md. Class colours are fixed per ontology class (the same in every preview).</p></section>')
    parts.append("</main>")

    doc = f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>satds report</title><style>{CSS}</style></head><body>{"".join(parts)}</body></html>\n'
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    return out
