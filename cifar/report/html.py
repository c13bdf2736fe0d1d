"""``REPORT.html``: the Markdown report as one standalone page with its images embedded."""

from __future__ import annotations

import base64
import re
from html import escape
from pathlib import Path

_IMG_SRC = re.compile(r'(<img[^>]*\ssrc=")([^"]+)(")')
_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; }
td img { width: 96px; max-width: 100%; image-rendering: pixelated; }
code { background: #f5f5f5; padding: 0 0.2em; }
@page { size: A4; margin: 15mm 12mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; }
  h1 { font-size: 17pt; }
  h2 { font-size: 13pt; break-after: avoid; page-break-after: avoid; }
  h3 { font-size: 11pt; break-after: avoid; page-break-after: avoid; }
  table { width: 100%; table-layout: fixed; font-size: 7.5pt; }
  th, td { padding: 0.15em 0.3em; overflow-wrap: anywhere; word-wrap: break-word; }
  tr, img, p:has(> img) { break-inside: avoid; page-break-inside: avoid; }
  img { max-height: 150mm; object-fit: contain; }
  td img { width: 22mm; }
  code { overflow-wrap: anywhere; word-break: break-word; }
  pre { white-space: pre-wrap; }
}
"""


def write_html(markdown_text: str, path: Path, base_dir: Path, title: str = "Run report") -> Path:
    """Render the Markdown to one standalone HTML file with every local image embedded."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])

    def embed(match: re.Match) -> str:
        src = match.group(2)
        file = base_dir / src
        if src.startswith(("data:", "http:", "https:")) or not file.is_file():
            return match.group(0)
        data = base64.b64encode(file.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    body = _IMG_SRC.sub(embed, body)
    html = (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    path.write_text(html)
    return path
