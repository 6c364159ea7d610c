"""HTML building blocks of the report: every piece of text goes through :func:`html.escape`.

The helpers take *plain text* (never HTML) and return HTML fragments; fragments are joined by
the caller. Images are PNG bytes embedded as ``data:image/png;base64`` URIs, the style sheet
and the one script are inline, so the page needs no network access.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from noetik.utils.bootstrap import format_estimate

__all__ = [
    "CSS",
    "IMAGE_SCRIPT",
    "Section",
    "details",
    "esc",
    "fmt",
    "img",
    "interval",
    "json_text",
    "note",
    "page",
    "para",
    "pre",
    "table",
    "unavailable",
]

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
header{background:#1d2430;color:#fff;padding:18px 24px}
header h1{margin:0;font-size:1.5em}header p{margin:4px 0 0;color:#c9d1de}
nav{margin:10px 0 0}nav a{color:#9cc3ff;margin-right:14px;text-decoration:none;font-size:.92em}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:18px 0;
padding:8px 20px 16px;overflow-x:auto}
h2{border-bottom:2px solid #e4e8ee;padding-bottom:4px;font-size:1.25em}
h3{font-size:1.05em;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:.86em}
th,td{border:1px solid #dde1e7;padding:3px 8px;text-align:left;vertical-align:top;
white-space:nowrap}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:8px 0;border:1px solid #eee}
pre{background:#f3f5f8;padding:8px;overflow-x:auto;font-size:.82em}
.note{color:#5b6577;font-style:italic}
.unavailable{color:#8a4b00;background:#fff6e5;border-left:4px solid #f0a020;padding:6px 10px}
.explanation{background:#f3f8ff;border-left:4px solid #4a8fe7;padding:8px 12px}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid>div{flex:1 1 420px;min-width:0}
tr.current td{background:#fffbe0}
""".strip()

#: Harmless inline script: once every image has loaded, the number of images with pixels
#: (``naturalWidth > 0``) and the total go into ``data-images-loaded``/``data-images-total``
#: of ``<body>`` (a headless browser's DOM dump shows whether the plots decoded).
IMAGE_SCRIPT = (
    'window.addEventListener("load",function(){var imgs=document.images,n=0;'
    "for(var i=0;i<imgs.length;i++){if(imgs[i].naturalWidth>0){n++;}}"
    'document.body.setAttribute("data-images-loaded",String(n));'
    'document.body.setAttribute("data-images-total",String(imgs.length));});'
)


@dataclass(frozen=True)
class Section:
    """One report section: ``<section id=...><h2>title</h2>body</section>``."""

    id: str
    """HTML id (letters, digits and dashes)."""
    title: str
    """Heading text (plain text, escaped when rendered)."""
    body: str
    """HTML fragment built with this module's helpers."""

    def render(self) -> str:
        """The section as HTML."""
        return f'<section id="{esc(self.id)}">\n<h2>{esc(self.title)}</h2>\n{self.body}\n</section>'


def esc(text: object) -> str:
    """``str(text)`` with ``& < > " '`` escaped."""
    return html.escape(str(text), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A number as short text (``-`` for None/NaN, integers without decimals); other values
    as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "-"
        small_or_large = abs(value) >= 1e5 or 0 < abs(value) < 1e-3
        return f"{value:.{digits}g}" if small_or_large else f"{value:.{digits}f}"
    return str(value)


def interval(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """``mean [low, high]`` of a ``{"mean", "low", "high"}`` dict (``-`` when absent), as
    :func:`~noetik.utils.bootstrap.format_estimate` prints it with ``digits`` significant
    digits of the interval's width (the mean is never printed outside its interval)."""
    if not entry or any(entry.get(k) is None for k in ("mean", "low", "high")):
        return "-"
    return format_estimate(entry["mean"], entry["low"], entry["high"], digits)


def para(text: str, cls: str | None = None) -> str:
    """A ``<p>`` of plain ``text``."""
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def note(text: str) -> str:
    """A greyed-out remark."""
    return para(text, "note")


def unavailable(reason: str) -> str:
    """The body of a section that cannot be shown: ``not available: <reason>``."""
    return para(f"not available: {reason}", "unavailable")


def pre(text: str) -> str:
    """Preformatted plain text."""
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, body: str) -> str:
    """A collapsed ``<details>`` with plain-text ``summary`` around HTML ``body``."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def _cell(value: Any, tag: str) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    cls = ' class="num"' if numeric and tag == "td" else ""
    return f"<{tag}{cls}>{esc(fmt(value))}</{tag}>"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    highlight: Sequence[bool] | None = None,
) -> str:
    """A ``<table>`` of plain values (numbers formatted by :func:`fmt`); ``highlight[i]``
    marks row ``i`` as the current one."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<tr>" + "".join(_cell(h, "th") for h in header) + "</tr>")
    for i, row in enumerate(rows):
        cls = ' class="current"' if highlight is not None and highlight[i] else ""
        out.append(f"<tr{cls}>" + "".join(_cell(v, "td") for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` embedding the PNG bytes ``png`` as a base64 data URI."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("img() needs PNG bytes")
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def json_text(value: Any) -> str:
    """``value`` as indented JSON text (for :func:`pre`)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole self-contained HTML document."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(s.render() for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p><nav>{nav}</nav></header>\n"
        f"<main>\n{body}\n</main>\n<script>{IMAGE_SCRIPT}</script>\n</body>\n</html>\n"
    )
