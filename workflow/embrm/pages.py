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


def markdown_tables_html(markdown: str) -> str:
    """Markdown made of ``### `` headings, paragraphs and pipe tables (bold marks dropped) as
    HTML: the tables of a Markdown page for the report."""
    out, rows = [], []

    def flush():
        if rows:
            head, *body = rows
            out.append(
                "<table class='grid'><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"
            )
            out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
            out.append("</table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip().replace("**", "")) for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-") for c in cells):  # the header's rule
                rows.append(cells)
            continue
        flush()
        if line.startswith("### "):
            out.append(f"<h2>{html.escape(line[4:])}</h2>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)
