"""The runbooks and deployment docs name only commands that exist, and links that resolve."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [*(ROOT / "docs" / "runbooks").glob("*.md"), *(ROOT / "docs" / "deployment").glob("*.md")]
)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_script_and_module_named_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for script in set(re.findall(r"scripts/[\w./-]+\.sh", text)):
        assert (ROOT / script).is_file(), f"{doc.name}: {script} does not exist"
    for module in set(re.findall(r"python -m (shared[\w.]*)", text)):
        assert importlib.util.find_spec(module) is not None, f"{doc.name}: no module {module}"
    for target in set(re.findall(r"(?:^|`)make ([\w-]+)", text, re.M)):
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{doc.name}: make {target}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_relative_link_and_anchor_resolves(doc: Path) -> None:
    for target, anchor in re.findall(
        r"\]\(([^)#:]*\.md)?(?:#([\w-]+))?\)", doc.read_text(encoding="utf-8")
    ):
        path = (doc.parent / target).resolve() if target else doc
        assert path.is_file(), f"{doc.name}: link to {target}"
        if anchor:
            assert anchor in anchors(path), f"{doc.name}: {target}#{anchor} has no such heading"
