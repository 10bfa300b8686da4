"""The report as one self-contained HTML page: the pictures embedded as data URIs, readable
with no network. On load, ``<body>`` records how many images it holds and how many decoded
(``data-images``, ``data-loaded``), so a headless browser can check the page."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}img{max-width:100%;
display:block;margin:.5rem 0}pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;font-size:.8rem}
p.note{color:#555;font-size:.9rem}"""

SCRIPT = """window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  document.body.dataset.images = imgs.length;
  document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
});"""


@dataclass(frozen=True)
class Section:
    title: str
    text: str = ""  # preformatted (a table), shown above the pictures
    pictures: tuple[tuple[str, bytes], ...] = ()  # (alt text, PNG bytes)
    note: str = ""


def page(title: str, sections: Sequence[Section]) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<pre>{html.escape(s.text)}</pre>")
        for alt, png in s.pictures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        if s.note:
            parts.append(f'<p class="note">{html.escape(s.note)}</p>')
    body = "\n".join(parts)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<script>{SCRIPT}</script></head>\n<body>\n{body}\n</body></html>\n"
    )
