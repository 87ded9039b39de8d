"""Every link in the README and the guides stays inside the repository and
resolves: a relative link names a file or folder that exists, and a link
to a heading (#anchor) names one that the target file has, spelled as
GitHub spells heading anchors. A link that leaves the repository (an
absolute URL, or a path above its root) fails: an installed wheel's README
and a checkout both have everything a link points to."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", ROOT / "examples" / "README.md",
                *(ROOT / "docs").glob("*.md")])

# [text](target) and ![alt](target), with an optional "title"; the text may
# hold one level of brackets ([`x[0]`](y)).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def strip_code(text: str) -> str:
    """The page without its code blocks and code spans, where brackets are not links."""
    return CODE.sub("", FENCE.sub("", text))


def anchor_of(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation
    dropped (hyphens and underscores kept), spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = anchor_of(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(strip_code(page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page):
    assert page.exists()
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            broken.append(f"{target}: leaves the repository")
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if ROOT not in dest.parents and dest != ROOT:
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, broken


def test_the_checker_sees_links_and_anchors():
    text = "See [a](docs/x.md#b-c), ![img](i.png) and `[not](a-link)`.\n"
    assert LINK.findall(strip_code(text)) == ["docs/x.md#b-c", "i.png"]
    assert anchor_of("TLS (`tls.cpp`, `src/cxxloop/_tls.py`)") == "tls-tlscpp-srccxxloop_tlspy"
    assert anchor_of("Where it differs from asyncio") == "where-it-differs-from-asyncio"
    assert anchor_of("2026-12-01") == "2026-12-01"
