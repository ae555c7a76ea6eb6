"""Self-contained HTML pages for the report's tables (inline style, no scripts, nothing fetched)."""

from __future__ import annotations

import html

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1em; color: #1f2937; }
h1 { font-size: 1.2em; } p { max-width: 60em; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #d1d5db; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f3f4f6; position: sticky; top: 0; }
tr:nth-child(even) td { background: #f9fafb; }
table.grid td { text-align: left; white-space: normal; }
"""


def html_page(title: str, intro: str, body: str) -> str:
    """A self-contained HTML page (inline style, no scripts, no external resources)."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>{body}</body></html>\n"
    )
