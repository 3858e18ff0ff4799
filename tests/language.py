"""Telling Dutch from English in what a person reads, using the Dutch catalogue.

The catalogue test (test_migrations_and_catalogue) proves every string has a translation; these
checks prove pages and mails use it: a string formatted outside the person's locale, or text that
never went through gettext, shows up here.
"""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%")


def _pieces(message: str) -> list[str]:
    """The placeholder-free pieces of a message that are long enough to be telling."""
    pieces = (piece.strip(" :.,;()–-") for piece in PLACEHOLDER.split(message))
    return [piece for piece in pieces if len(piece.split()) >= 2 and len(piece) >= 10]


class Catalogue:
    """The Dutch catalogue, used to spot the wrong language on a page or in a mail.

    `left_in(text, lang)` finds, on a Dutch page, the English msgid (or a placeholder-free piece of
    it of at least two words) of every string the catalogue translates differently, and on an
    English page the Dutch translations: a string rendered outside the request's locale, or a
    translation missing from the compiled catalogue. `same_in_both(nl, en, data)` finds text that
    is identical on the Dutch and the English rendering of a page and is neither data (titles,
    names) nor a string the catalogue deliberately keeps the same: text that never went through
    gettext."""

    def __init__(self, po_path: Path = ROOT / "translations" / "nl" / "LC_MESSAGES" / "messages.po"):
        with po_path.open("rb") as fh:
            catalogue = read_po(fh)
        english, dutch, same = set(), set(), set()
        all_ids, all_strings = [], []
        self.translations: dict[str, str] = {}
        for entry in catalogue:
            if not entry.id or not entry.string:
                continue
            ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
            strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
            self.translations[ids[0]] = strings[0]
            all_ids.extend(ids)
            all_strings.extend(strings)
            if set(ids) & set(strings):
                same.update(ids)
                continue
            for msgid in ids:
                english.update(_pieces(msgid))
            for string in strings:
                dutch.update(_pieces(string))
        # A piece that occurs in the other language too (a name, a Dutch term kept in the English
        # text, "online seminar") proves nothing.
        ids_text, strings_text = "\n".join(all_ids), "\n".join(all_strings)
        self.wrong = {"nl": sorted(p for p in english if p not in strings_text),
                      "en": sorted(p for p in dutch if p not in ids_text)}
        self.same = same

    def nl(self, msgid: str, **values) -> str:
        """The Dutch for an English message id, as a page or mail shows it."""
        assert msgid in self.translations, f"not in the Dutch catalogue: {msgid!r}"
        return self.translations[msgid] % values if values else self.translations[msgid]

    def left_in(self, text: str, lang: str = "nl") -> list[str]:
        """Pieces of the other language in a text that should be all in `lang`."""
        flat = re.sub(r"\s+", " ", text)
        return [piece for piece in self.wrong[lang] if piece in flat]

    def same_in_both(self, nl: list[str], en: list[str], data: list[str]) -> list[str]:
        english = set(en)
        suspicious = []
        for segment in dict.fromkeys(nl):
            if segment not in english or segment in self.same:
                continue
            rest = segment
            for value in sorted(data, key=len, reverse=True):
                rest = rest.replace(value, " ")
            # Addresses, links and code names (the outbox shows job kinds such as mail.reminder).
            rest = re.sub(r"\S+@\S+|https?://\S+|\b[a-z]+(?:[._][a-z]+)+\b", " ", rest)
            if re.search(r"[^\W\d_]{2,}", rest):  # a word is left that is not data
                suspicious.append(segment)
        return suspicious
