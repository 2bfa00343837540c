"""Rendering of the report's blocks as GitHub-flavoured Markdown."""

from __future__ import annotations

import re
from collections.abc import Sequence

from whisper_ptq_bench.report.blocks import Block, Bullets, Cell, Heading, Image, Para, Table

# backslash, code, emphasis and table characters; "_" only where it could open or close emphasis
_MD_ESCAPE = re.compile(r"([\\`*|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def _md_text(text: str) -> str:
    text = " ".join(str(text).split())
    text = _MD_ESCAPE.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _md_code(text: str, in_table: bool = False) -> str:
    text = " ".join(str(text).split())
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") or fence != "`" else ""
    body = f"{fence}{pad}{text}{pad}{fence}"
    return body.replace("|", "\\|") if in_table else body


def _md_cell(cell: Cell) -> str:
    text = _md_code(cell.text, in_table=True) if cell.code else _md_text(cell.text)
    return f"**{text}**" if cell.warn and text and not cell.code else text


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _md_text(b.text))
        elif isinstance(b, Para):
            out.append(f"**{_md_text(b.text)}**" if b.warn else _md_text(b.text))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_text(h) for h in b.headers) + " |"]
            aligns = ["---:" if b.rows and all(r[i].numeric for r in b.rows) else "---" for i in range(len(b.headers))]
            lines.append("| " + " | ".join(aligns) + " |")
            for row in b.rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            out.append("\n".join(lines))
        elif isinstance(b, Bullets):
            lines = []
            for item, subs in b.items:
                lines.append("- " + (_md_code(item) if b.code else _md_text(item)))
                lines += ["  - " + _md_text(s) for s in subs]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{_md_text(b.alt)}]({b.path})")
    return "\n\n".join(out) + "\n"
