"""HTML assembly for the report: one self-contained file. Vega, Vega-Lite and vega-embed are
inlined from vl-convert's bundle so the page opens offline; every user string is escaped, and
chart specs are embedded as JSON with '<', '>' and '&' escaped so data cannot close a script tag.

The page records its own render status for tests and users: <body data-charts=N data-rendered=K
data-done=1> and any script error or console.error in <pre id="report-errors">."""
from __future__ import annotations

import functools
import html
import json
from typing import NamedTuple


class Section(NamedTuple):
    anchor: str
    title: str
    charts: list          # [(name, vega-lite spec dict)]
    notes: list           # plain-text notes (what is missing, how it was derived)
    html: str = ""        # extra, already-escaped HTML (tables)


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _json_for_script(obj) -> str:
    return json.dumps(obj, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one script, with the Vega-Lite version Altair targets."""
    import altair as alt
    import vl_convert as vlc

    want = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    version = want if want in vlc.get_vegalite_versions() else None
    # the bundle has no "</script" today; escaping it keeps the inline <script> intact if it ever does
    return vlc.javascript_bundle(vl_version=version).replace("</script", "<\\/script")


def kv_table(rows, cls: str = "facts") -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def grid_table(header, rows, cls: str = "grid") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 2rem;color:#222}
h1{margin-bottom:.2rem} .meta{color:#666;margin-top:0} nav a{margin-right:1rem}
section{border-top:1px solid #ddd;margin-top:1.5rem} .chart{margin:1rem 0;overflow-x:auto}
.missing{background:#fff4e5;border-left:4px solid #f0a030;padding:.4rem .8rem}
.note{color:#555} table{border-collapse:collapse;margin:.5rem 0 1rem} th,td{border:1px solid #ddd;
padding:.25rem .6rem;text-align:left;vertical-align:top;font-size:.9rem} th{background:#f6f6f6}
.answer{font-size:1.1rem;background:#eef5fb;border-left:4px solid #4c78a8;padding:.6rem .9rem}
.caution{color:#a04000} pre.plan{background:#f6f6f6;padding:.5rem .8rem;overflow-x:auto}
#report-errors:empty{display:none} #report-errors{color:#b00;white-space:pre-wrap}
"""

# Runs before the bundle so that errors while loading it are captured too.
_CAPTURE_JS = """
(function(){
  var errs = [];
  function note(m){ errs.push(String(m)); var box = document.getElementById('report-errors');
    if (box) box.textContent = errs.join('\\n'); document.documentElement.setAttribute('data-errors', errs.length); }
  window.__reportNote = note;
  window.addEventListener('error', function(e){ note('error: ' + e.message); });
  window.addEventListener('unhandledrejection', function(e){ note('unhandled rejection: ' + e.reason); });
  var ce = console.error;
  console.error = function(){
    note('console.error: ' + Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); };
})();
"""

_EMBED_JS = """
(function(){
  var note = window.__reportNote, divs = document.querySelectorAll('div[data-spec]'), jobs = [];
  document.body.setAttribute('data-charts', divs.length);
  divs.forEach(function(div){
    try {
      var spec = JSON.parse(document.getElementById(div.getAttribute('data-spec')).textContent);
      jobs.push(vegaEmbed(div, spec, {actions: false, renderer: 'svg'}).then(
        function(){ div.setAttribute('data-rendered', '1'); },
        function(e){ div.setAttribute('data-rendered', '0'); note('chart ' + div.id + ': ' + e); }));
    } catch (e) { div.setAttribute('data-rendered', '0'); note('chart ' + div.id + ': ' + e); }
  });
  Promise.allSettled(jobs).then(function(){
    document.body.setAttribute('data-rendered', document.querySelectorAll('div[data-rendered="1"]').length);
    document.body.setAttribute('data-done', '1');
  });
})();
"""


def _section(s: Section) -> str:
    parts = [f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>']
    parts += [f'<p class="missing">{esc(n)}</p>' for n in s.notes]
    for name, spec in s.charts:
        cid = f"chart-{name}"
        parts.append(f'<div class="chart" id="{esc(cid)}" data-spec="{esc(cid)}-spec"></div>'
                     f'<script type="application/json" id="{esc(cid)}-spec">{_json_for_script(spec)}</script>')
    parts.append(s.html)
    parts.append("</section>")
    return "\n".join(parts)


def render(title: str, subtitle: str, sections: list) -> str:
    nav = " ".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(_section(s) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_CSS}</style>
<script>{_CAPTURE_JS}</script>
<script>{vega_bundle()}</script>
</head><body>
<h1>{esc(title)}</h1>
<p class="meta">{esc(subtitle)}</p>
<noscript><p class="note">Charts need JavaScript; the tables below do not.</p></noscript>
<pre id="report-errors"></pre>
<nav>{nav}</nav>
{body}
<script>{_EMBED_JS}</script>
</body></html>
"""


def chart_spec(chart) -> dict:
    import altair as alt

    with alt.data_transformers.disable_max_rows():
        spec = chart.to_dict()
    json.dumps(spec, allow_nan=False)  # the page embeds strict JSON: fail here, as a note, not later
    return spec


def add_chart(charts_out: list, notes: list, name: str, what: str, build):
    """Build one chart; a chart that cannot be drawn from odd data becomes a note, not a crash."""
    try:
        charts_out.append((name, chart_spec(build())))
    except Exception as e:  # noqa: BLE001 - any failure here must leave the rest of the report
        notes.append(f"Could not draw {what}: {type(e).__name__}: {e}")
