"""The README's links into the documentation resolve: every relative link names a file in the repository and,
with ``#anchor``, a heading of that page (the anchors mkdocs' ``toc`` extension makes). The pages themselves are
checked by ``mkdocs build --strict`` in ``.ci/run``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchor(heading: str) -> str:
    """The id Python-Markdown's toc extension gives a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def page_anchors(path: Path) -> set[str]:
    anchors, in_code = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            anchors.add(heading_anchor(line.lstrip("#")))
    return anchors


def relative_links(text: str) -> list[str]:
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_heading_anchor_matches_the_toc_extension():
    assert heading_anchor("Does the scene help on real photos?") == "does-the-scene-help-on-real-photos"
    assert heading_anchor("Demo: `zoo-cli demo`") == "demo-zoo-cli-demo"
    assert heading_anchor("Where the official code departs from the paper") == \
        "where-the-official-code-departs-from-the-paper"


def test_readme_links_resolve_to_files_and_headings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = relative_links(readme)
    assert len(links) > 20
    broken = []
    for target in links:
        path, _, anchor = target.partition("#")
        file = ROOT / path
        if not file.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and anchor not in page_anchors(file):
            broken.append(f"{target}: {path} has no heading with the anchor #{anchor}")
    assert not broken, "README.md links that do not resolve:\n" + "\n".join(broken)


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [page for page in pages if f": {page}" not in nav]
    assert not missing, f"docs pages missing from mkdocs.yml's nav: {missing}"
