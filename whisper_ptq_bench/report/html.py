"""Rendering of the report's blocks as one self-contained HTML page (plots referenced by relative path)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from whisper_ptq_bench.report.blocks import DEFAULT_TITLE, Block, Bullets, Cell, Heading, Image, Para, Table

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 110em; padding: 0 1em; color: #1b1f23; }
h1, h2, h3, h4 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.warn { background: #fff1f0; color: #a40e26; font-weight: 600; }
p.warn { padding: 0.5em 0.8em; border-left: 4px solid #cf222e; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.95em; }
img { max-width: 100%; border: 1px solid #d0d7de; }
"""


def _html_cell(cell: Cell) -> str:
    classes = [c for c, on in (("num", cell.numeric), ("warn", cell.warn)) if on]
    attr = f' class="{" ".join(classes)}"' if classes else ""
    body = html.escape(cell.text)
    return f"<td{attr}>" + (f"<code>{body}</code>" if cell.code else body) + "</td>"


def to_html(blocks: Sequence[Block], title: str = DEFAULT_TITLE) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            level = min(max(b.level, 1), 6)
            out.append(f"<h{level}>{html.escape(b.text)}</h{level}>")
        elif isinstance(b, Para):
            cls = ' class="warn"' if b.warn else ""
            out.append(f"<p{cls}>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            out.append("<table>")
            out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.headers) + "</tr></thead>")
            out.append("<tbody>")
            out += ["<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in b.rows]
            out.append("</tbody></table>")
        elif isinstance(b, Bullets):
            out.append("<ul>")
            for item, subs in b.items:
                head = f"<code>{html.escape(item)}</code>" if b.code else html.escape(item)
                sub = "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in subs) + "</ul>" if subs else ""
                out.append(f"<li>{head}{sub}</li>")
            out.append("</ul>")
        elif isinstance(b, Image):
            out.append(f'<p><img src="{html.escape(b.path, quote=True)}" alt="{html.escape(b.alt, quote=True)}"></p>')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
