"""One self-contained HTML report a governance team can file: changes first, then a summary per namespace,
non-compliant workloads with grouped reasons, the image inventory, what was not evaluated and why, and the
metadata (version, config fingerprint, authorities, constraints, inputs).

No external assets (CSS and the small sorting script are inline), so it works offline, by mail and printed.
Every string may come from a Pod spec or a registry: all of it goes through `escape`, the summary JSON
embedded for scripts has `<`, `>` and `&` as JSON escapes, and characters HTML forbids (controls, lone
surrogates, noncharacters) become visible escapes (`printable`). Long references get break opportunities only at
`/`, `:` and `@`, and digests and runs over 48 characters are shortened (full in the title), so no cell breaks
inside a word. Wide tables scroll inside their own box: the page keeps to the window from a phone (390 px) up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from html import escape

from provider.audit.model import STATE_LABELS, STATES, Change, Diff, ImageRow, Report, Workload
from provider.audit.printable import printable
from provider.audit.workloads import by_severity

COLOURS = {"blocked": "#cf222e", "wouldBlock": "#bf8700", "notEvaluated": "#8c959f", "compliant": "#2da44e"}
DIGEST = re.compile(r"(sha256:[0-9a-f]{12})[0-9a-f]{52}")
BREAK_AFTER = re.compile(r"([/@:])")
WORD = re.compile(r"\S+")
LONGEST_WORD = 48  # characters of one unbreakable run shown; the rest is in its title (hover)

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1400px}h1{margin-bottom:.2rem}
h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
.muted{color:#57606a}table{border-collapse:collapse;margin:.6rem 0 1rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top;font-size:.85rem;
overflow-wrap:break-word;word-break:normal;hyphens:none}
th{background:#f6f8fa;cursor:pointer;white-space:nowrap}th[data-order=asc]::after{content:" \\25B2"}
th[data-order=desc]::after{content:" \\25BC"}
.state-blocked{color:#cf222e;font-weight:600}.state-wouldBlock{color:#9a6700;font-weight:600}
.state-notEvaluated{color:#57606a}.state-compliant{color:#1a7f37}
.img-verified{color:#1a7f37}.img-unverified,.img-error{color:#cf222e}.img-unchecked{color:#57606a}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .9rem}
td .nw,th .nw{white-space:nowrap}.card b{display:block;font-size:1.5rem}code{font-size:.8rem}
ul.tight{margin:.2rem 0;padding-left:1.1rem}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .8rem;font-size:.9rem}
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
.scroll{overflow-x:auto;max-width:100%;margin:.6rem 0 1rem}.scroll>table{margin:0}
#chart{max-width:100%;height:auto}
body{overflow-wrap:anywhere}
@media (max-width:600px){body{margin:.75rem}.cards{gap:.5rem}.card{padding:.4rem .6rem}}
@media print{body{margin:0;max-width:none}th{cursor:auto}th::after{content:""!important}
tr{break-inside:avoid}h2{break-after:avoid}.card{break-inside:avoid}.scroll{overflow:visible}}
"""

SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = th.dataset.order !== 'asc';
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent, y = b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    th.closest('tr').querySelectorAll('th').forEach(function (other) { delete other.dataset.order; });
    th.dataset.order = ascending ? 'asc' : 'desc';
  });
});
document.body.dataset.ready = '1';
"""


def text(value: object) -> str:
    """Escaped text with break opportunities after `/`, `@` and `:`, and digests shortened to 12 hex digits."""
    value, parts, last = str(value), [], 0
    for match in DIGEST.finditer(value):
        parts.append(_breakable(value[last:match.start()]))
        parts.append(f'<span title="{escape(match.group(0))}">{escape(match.group(1))}…</span>')
        last = match.end()
    parts.append(_breakable(value[last:]))
    return "".join(parts)


def _breakable(value: str) -> str:
    parts = []
    for piece in BREAK_AFTER.split(value):
        if BREAK_AFTER.fullmatch(piece):
            parts.append(escape(piece) + "<wbr>")
        else:  # browsers may break after a hyphen; names like "legacy-app" must stay whole
            parts.append(WORD.sub(_word, piece))
    return "".join(parts)


def _word(match: re.Match[str]) -> str:
    """One run without spaces or break points: kept whole, and past LONGEST_WORD cut short with the full text on
    hover, so no single name makes a column wider than a phone."""
    word = match.group(0)
    if len(word) > LONGEST_WORD:
        return f'<span class="nw" title="{escape(word)}">{escape(word[:LONGEST_WORD - 1])}…</span>'
    return f'<span class="nw">{escape(word)}</span>' if "-" in word else escape(word)


def _list(items: Iterable[str]) -> str:
    entries = [f"<li>{text(i)}</li>" for i in items]
    return f'<ul class="tight">{"".join(entries)}</ul>' if entries else ""


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted" id="{table_id}-empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    # A wide table scrolls inside its own wrapper: the page itself never scrolls sideways, even on a phone.
    return (f'<div class="scroll"><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def _state(state: str) -> str:
    return f'<span class="state-{escape(state)}">{escape(STATE_LABELS.get(state, state))}</span>'


def _chart(namespaces: list[dict[str, int | str]]) -> str:
    """Stacked bars per namespace: workloads blocked, would be blocked, not evaluated, compliant."""
    width, bar, gap, left = 760, 18, 6, 170
    height = max(1, len(namespaces)) * (bar + gap) + 10
    peak = max((int(n["total"]) for n in namespaces), default=1) or 1
    scale = (width - left - 60) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="workloads by namespace and state" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" id="chart">']
    for row, ns in enumerate(namespaces):
        y, x = 5 + row * (bar + gap), float(left)
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(str(ns["namespace"])[:24])}</text>')
        for state in ("blocked", "wouldBlock", "notEvaluated", "compliant"):
            count = int(ns[state])
            if count:
                parts.append(f'<rect class="bar-{state}" x="{x:.1f}" y="{y}" width="{count * scale:.1f}" '
                             f'height="{bar}" fill="{COLOURS[state]}"><title>{escape(str(ns["namespace"]))}: '
                             f'{count} {STATE_LABELS[state]}</title></rect>')
                x += count * scale
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}" font-size="12">{ns["total"]}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{COLOURS[s]}"></i>{STATE_LABELS[s]}</span>'
                     for s in ("blocked", "wouldBlock", "notEvaluated", "compliant"))
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _reason_groups(workloads: Sequence[Workload]) -> tuple[dict[str, str], list[tuple[str, str, int, list[str]]]]:
    """Each distinct failure message once, with how many workloads show it and under which constraints."""
    users: dict[str, set[str]] = {}
    constraints: dict[str, set[str]] = {}
    for workload in workloads:
        for constraint_id, failure in workload.failures.items():
            for message in failure.messages:
                users.setdefault(message, set()).add(workload.ref.id)
                constraints.setdefault(message, set()).add(constraint_id)
    ordered = sorted(users, key=lambda m: (-len(users[m]), m))
    ids = {message: f"R{n}" for n, message in enumerate(ordered, 1)}
    return ids, [(ids[m], m, len(users[m]), sorted(constraints[m])) for m in ordered]


def _diff_section(diff: Diff) -> str:
    def changes(items: list[Change]) -> list[list[str]]:
        return [[text(c.id), _state(c.before) if c.before in STATES else escape(c.before),
                 _state(c.after) if c.after in STATES else escape(c.after)] for c in items]

    def images(items: list[Change]) -> list[list[str]]:
        return [[text(c.id), f'<span class="img-{escape(c.before)}">{escape(c.before)}</span>',
                 f'<span class="img-{escape(c.after)}">{escape(c.after)}</span>'] for c in items]

    head = ["workload", "before", "now"]
    return f"""<section id="diff"><h2>Changes since the baseline</h2>
<p class="muted">baseline {text(diff.baseline)}, generated {escape(diff.baseline_generated_at)}</p>
{'<p id="diff-none">Nothing changed.</p>' if diff.empty else ''}
<h3>Newly non-compliant ({len(diff.newly_non_compliant)})</h3>
{_table("diff-newly", head, changes(diff.newly_non_compliant), "none")}
<h3>Fixed ({len(diff.fixed)})</h3>
{_table("diff-fixed", head, changes(diff.fixed), "none")}
<h3>Images whose verification changed ({len(diff.verification_changed)})</h3>
{_table("diff-images", ["image", "before", "now"], images(diff.verification_changed), "none")}
<h3>Added and removed</h3>
{_table("diff-other", ["change", "what"], [["workload added", text(w)] for w in diff.added_workloads]
        + [["workload removed", text(w)] for w in diff.removed_workloads]
        + [["new image", text(i)] for i in diff.new_images]
        + [["image gone", text(i)] for i in diff.removed_images], "none")}
</section>"""


def _workload_rows(workloads: Sequence[Workload], states: dict[str, str], reasons: dict[str, str],
                   gatekeeper: bool) -> list[list[str]]:
    rows = []
    for w in workloads:
        failing = "".join(f"<li>{text(c)} <span class=\"muted\">({escape(f.constraint.enforcement_action)})</span>"
                          f"</li>" for c, f in sorted(w.failures.items()))
        images = "".join(f'<li class="img-{escape(states.get(i, "unchecked"))}">{text(i)}</li>' for i in w.images)
        refs = sorted({reasons[m] for f in w.failures.values() for m in f.messages}, key=lambda r: int(r[1:]))
        row = [text(w.ref.namespace or "(cluster)"), f"{escape(w.ref.kind)}/<wbr>{text(w.ref.name)}",
               _state(w.state), f'<ul class="tight">{failing}</ul>', f'<ul class="tight">{images}</ul>',
               " ".join(f'<a href="#{r}">{r}</a>' for r in refs)]
        if gatekeeper:
            row.append(_list(sorted(w.gatekeeper or ())))
        rows.append(row)
    return rows


def _image_rows(images: Sequence[ImageRow]) -> list[list[str]]:
    return [[_list(r.reference for r in row.references), text(row.digest) if row.digest else "",
             f'<span class="img-{escape(row.state)}">{escape(row.state)}</span>',
             _list(str(use) for use in sorted(row.uses)),
             text(", ".join(sorted(row.namespaces))), text(", ".join(sorted(row.authorities))),
             _list(f"{s.authority}: {s.identity}" + (f", {s.signed_at}" if s.signed_at else "") for s in row.signers),
             _list(row.reasons)] for row in images]


def _metadata_section(report: Report) -> str:
    meta = report.metadata
    config = "".join(f"<li>{escape(k)}: {text(v)}</li>" for k, v in meta.config.items()) or "<li>none</li>"
    authorities = [[text(a["name"]), text(", ".join(a["kinds"])), text(", ".join(a["scopes"]))]
                   for a in meta.authorities]
    constraints = [[text(c.id), escape(c.enforcement_action),
                    escape(", ".join(c.admission_actions) or "none"), escape(", ".join(c.audit_actions) or "none"),
                    f"<code>{text(json.dumps(c.parameters, sort_keys=True))}</code>" if c.parameters else "",
                    f"<code>{text(json.dumps(c.match, sort_keys=True))}</code>" if c.match else "",
                    text(c.source)] for c in meta.constraints]
    inputs = [[escape(i["role"]), text(i["path"]), text("sha256:" + i["sha256"]) if "sha256" in i else ""]
              for i in meta.inputs]
    exemptions = [[text(e["pattern"]), text(e["source"])] for e in meta.exemptions]
    return f"""<section id="metadata"><h2>How this report was made</h2>
<ul class="tight"><li>sigwarden {escape(meta.version)}</li><li>generated {escape(meta.generated_at)}</li>
{config}</ul>
<h3>Constraints</h3>
{_table("constraints", ["constraint", "action", "at admission", "in audit", "parameters", "match", "file"],
        constraints, "no constraints")}
<h3>Authorities</h3>
{_table("authorities", ["name", "kinds", "scopes"], authorities, "no config given (a provider URL was used)")}
<h3>Gatekeeper exemptions given</h3>
{_table("exemptions", ["namespace pattern", "from"], exemptions, "none given")}
<h3>Inputs</h3>
{_table("inputs", ["role", "file", "sha256"], inputs, "none")}
</section>"""


def _gatekeeper_note(report: Report) -> str:
    gatekeeper = report.metadata.gatekeeper
    if gatekeeper is None:
        return ""
    cut = "".join(f"<li>{text(c)}: {gatekeeper.listed.get(c, 0)} listed of {gatekeeper.totals[c]}</li>"
                  for c in gatekeeper.truncated)
    warning = (f'<p class="note" id="gatekeeper-truncated">Gatekeeper cut its violation list at its '
               f'per-constraint limit (<code>--constraint-violations-limit</code>), so workloads beyond it are '
               f'missing from the Gatekeeper column:</p><ul class="tight">{cut}</ul>') if cut else ""
    return f'<p class="muted">The Gatekeeper column lists the constraints Gatekeeper\'s own audit status ' \
           f'names the workload under ({escape(", ".join(gatekeeper.files))}).</p>{warning}'


def render_html(report: Report) -> str:
    summary = report.summary()
    states = {r.reference: r.state for row in report.images for r in row.references}
    reason_ids, groups = _reason_groups(report.workloads)
    gatekeeper = report.metadata.gatekeeper is not None
    headers = ["namespace", "workload", "state", "failing constraints", "images", "reasons"] + \
        (["Gatekeeper"] if gatekeeper else [])
    cards = [("workloads", summary["workloads"]["total"], "workloads"),
             ("blocked", summary["workloads"]["blocked"], "blocked now"),
             ("wouldBlock", summary["workloads"]["wouldBlock"], "would be blocked by deny"),
             ("notEvaluated", summary["workloads"]["notEvaluated"], "not evaluated"),
             ("compliant", summary["workloads"]["compliant"], "compliant"),
             ("images", summary["images"]["total"], "distinct images"),
             ("imagesVerified", summary["images"]["verified"], "images verified")]
    card_html = "".join(f'<div class="card" id="card-{key}"><b>{value}</b>{label}</div>' for key, value, label in cards)
    non_compliant = by_severity(report.non_compliant)
    compliant = [w for w in report.workloads if w.state == "compliant"]
    summary_json = json.dumps(summary).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # One pass over the finished page: no string reaches it without passing `printable`.
    return printable(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>sigwarden audit report</title><style>{CSS}</style></head>
<body>
<h1>sigwarden audit report</h1>
<p class="muted">generated {escape(report.metadata.generated_at)} by sigwarden {escape(report.metadata.version)}
{"· config " + text(str(report.metadata.config["fingerprint"])) if "fingerprint" in report.metadata.config
 else ""}</p>
{_diff_section(report.diff) if report.diff is not None else ""}
<h2>Summary</h2>
<div class="cards">{card_html}</div>
<p class="muted">{summary["objects"]} objects read, grouped into workloads by their top-level owner;
{summary["evaluations"]} evaluations, {summary["verifications"]} image verifications.</p>
<h3>Workloads by namespace</h3>
{_chart(report.by_namespace())}
<h2>Non-compliant workloads ({len(non_compliant)})</h2>
<p class="note">A constraint that denies Pods does not reject the Deployment, StatefulSet or Job that makes them:
the controller is admitted, and its ReplicaSet (or StatefulSet, Job) cannot create the Pods. The denial then shows
as a <code>FailedCreate</code> event on that controller (<code>kubectl get events
--field-selector reason=FailedCreate</code>), not as a rejected Deployment.</p>
{_gatekeeper_note(report)}
{_table("noncompliant", headers, _workload_rows(non_compliant, states, reason_ids, gatekeeper), "none")}
<h3>Reasons ({len(groups)})</h3>
{_table("reasons", ["id", "workloads", "constraints", "reason"],
        [[f'<span id="{rid}">{rid}</span>', str(count), _list(constraints), text(message)]
         for rid, message, count, constraints in groups], "none")}
<h2>Image inventory ({len(report.images)})</h2>
{_table("images", ["references", "digest", "state", "used by", "namespaces", "authorities", "signers",
                   "reasons"], _image_rows(report.images), "no images")}
<h2>Not evaluated ({len(report.not_evaluated)})</h2>
<p class="muted">Workloads no constraint selected, or that Gatekeeper never sees.</p>
{_table("notevaluated", ["namespace", "workload", "reasons"],
        [[text(w.ref.namespace or "(cluster)"), f"{escape(w.ref.kind)}/<wbr>{text(w.ref.name)}",
          _list(w.not_evaluated_reasons)] for w in report.not_evaluated], "none")}
<h2>Compliant workloads ({len(compliant)})</h2>
{_table("compliant", ["namespace", "workload", "evaluated by", "images"],
        [[text(w.ref.namespace or "(cluster)"), f"{escape(w.ref.kind)}/<wbr>{text(w.ref.name)}",
          _list(sorted(w.evaluated)), _list(w.images)] for w in compliant], "none")}
{_metadata_section(report)}
<script type="application/json" id="report-summary">{summary_json}</script>
<script>{SCRIPT}</script>
</body></html>
""")
