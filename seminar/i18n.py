"""Translations: English message ids, Dutch catalogue (the default language)."""
from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)


def compile_catalogues(directory: Path) -> None:
    """Compile every .po whose .mo is missing or older, so a fresh clone works without a build step.

    `make` compiles too; this is the safety net for `flask …` commands run straight from a clone.
    """
    for po_path in directory.glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        try:
            with po_path.open("rb") as fh:
                catalog = read_po(fh)
            tmp = mo_path.with_suffix(".mo.tmp")
            with tmp.open("wb") as fh:
                write_mo(fh, catalog)
            tmp.replace(mo_path)
        except OSError as exc:  # read-only install: the packaged .mo is used as it is
            log.warning("could not compile %s: %s", po_path, exc)
