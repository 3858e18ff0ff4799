"""docs/ARCHITECTURE.md's table of job kinds says what seminar/jobs/kinds.py declares."""
from __future__ import annotations

import re
from pathlib import Path

from seminar.jobs import kinds

DOC = Path(__file__).resolve().parent.parent / "docs" / "ARCHITECTURE.md"
ROW = re.compile(r"^\| `(?P<name>[a-z_.]+)` \| (?P<lane>\w+) \| (?P<key>.+?) \| `(?P<handler>[\w.:]+)` \|$")


def documented() -> dict[str, tuple[str, str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["name"]] = (match["lane"], match["key"], match["handler"])
    return rows


def declared() -> dict[str, tuple[str, str, str]]:
    rows = {}
    for kind in kinds.ALL:
        key = (f"`{kind.key}`" + (" (for ever)" if kind.once else "")) if kind.key else "— (every time)"
        rows[kind.name] = (str(kind.lane), key, kind.handler or kind.batch)
    return rows


def test_the_table_of_job_kinds_matches_kinds_py():
    assert documented() == declared()


def test_the_readme_links_the_architecture():
    assert "docs/ARCHITECTURE.md" in (DOC.parent.parent / "README.md").read_text()
