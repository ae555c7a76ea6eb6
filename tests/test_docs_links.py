"""The documentation's relative links point at files that exist and at headings that exist.

Anchors are matched against the headings' slugs as GitHub renders them: lower case, every
character that is not a letter, digit, underscore, hyphen or space dropped, spaces turned into
hyphens, and a repeated slug numbered ``-1``, ``-2``, ...
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slugs(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_slugs_follow_githubs_rule():
    text = "# At the study's scale: the split\n## Embedders (`embedder:`)\n## Embedders (`embedder:`)\n"
    assert slugs(text) == {
        "at-the-studys-scale-the-split",
        "embedders-embedder",
        "embedders-embedder-1",
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_a_file_and_a_heading(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # an external address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(REPO)}")
        elif anchor and linked.suffix == ".md" and anchor not in slugs(linked.read_text()):
            broken.append(f"{target}: no heading with the anchor #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)
