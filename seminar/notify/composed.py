"""What a mail is made of (`Composed`), and the language it is being composed in.

Composers (notify/mails.py, manage/mails.py) build a `Composed`; rendering and fastmime turn it
into text, HTML and bytes.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import force_locale, get_locale, get_translations, gettext


@dataclass
class Composed:
    subject: str
    paragraphs: list[str]
    action: tuple[str, str] | None = None  # (label, url)
    join_link: str | None = None
    manage_link: str | None = None
    invite: bytes | None = None
    invite_method: str | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    rendered: tuple[str, str] | None = None  # (plain text, HTML)
    to: tuple[str, str] | None = None  # (name, address), filled in by compose()
    footer: str | None = None  # replaces the attendee footer (mails to portal users)
    confidential: bool = False  # holds a sign-in link: not kept for the outbox view
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (filename, MIME type, data)
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra headers (List-Unsubscribe)


# The language a mail is being composed in, and that app's messages already translated into it.
_language: ContextVar["tuple[str, dict] | None"] = ContextVar("mail_language", default=None)


@contextmanager
def in_language(lang: str):
    """flask_babel's `force_locale(lang)`, and `_`/`ngettext` below look each message up once per
    language (a fan-out asks the same dozen for every attendee)."""
    with force_locale(lang):
        token = _language.set((lang, current_app.extensions.setdefault("mail.translations", {})))
        try:
            yield
        finally:
            _language.reset(token)


def _(string: str, **variables) -> str:
    """flask_babel's `gettext`: the translation, with the variables put in."""
    current = _language.get()
    if current is None:
        return gettext(string, **variables)
    lang, translated = current
    s = translated.get((lang, string))
    if s is None:
        s = translated[(lang, string)] = get_translations().ugettext(string)
    return s % variables if variables else s


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """flask_babel's `ngettext`: the form for `num`, with `num` and the variables put in."""
    variables.setdefault("num", num)
    current = _language.get()
    if current is None:
        s = get_translations().ungettext(singular, plural, num)
    else:
        lang, translated = current
        s = translated.get((lang, singular, plural, num))
        if s is None:
            s = translated[(lang, singular, plural, num)] = get_translations().ungettext(singular, plural, num)
    return s % variables


def language() -> str:
    """The language being composed in (as `str(get_locale())` identifies it)."""
    current = _language.get()
    return current[0] if current is not None else str(get_locale())
