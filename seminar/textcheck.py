"""What people may type, decided in one place for every text field (forms, CLI, services).

Three kinds of text:
- `NAME`: a person's or organisation's name. One line of visible characters: no control, format
  (bidi overrides, zero-width), private-use or unassigned characters, no markup, and no web or
  e-mail address (a name is put into mails sent from the association's own address; a link there
  would be phishing in our name).
- `TITLE`: a seminar's title: as `LINE`, and no markup.
- `LINE`: any other one-line text (a title, speakers, a search). No control characters and no
  bidi overrides.
- `TEXT`: several lines (a question, a description). As `LINE`, but newlines and tabs are fine.

Addresses go through `mail_address`: syntax (email-validator) and only what the relay can deliver
without SMTPUTF8 (an address with letters beyond ASCII before the @ is refused; a domain written in
other scripts is sent in its ASCII form).

The WTForms validators below (`name_text`, `title_text`, `line_text`, `multiline_text`, `email_address`) carry
Dutch-first messages; other code asks `problem(value, kind)` or calls `mail_address`.
"""
from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

NAME, TITLE, LINE, TEXT = "name", "title", "line", "text"

# Bidi embeddings/overrides and isolates: they reorder what a reader (or a terminal) shows.
BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
MULTILINE_OK = frozenset("\n\r\t")
# Categories refused in names: Cc control, Cf format (zero-width, bidi, soft hyphen), Cs surrogate,
# Co private use, Cn unassigned. In other text only controls, surrogates and bidi overrides.
NAME_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
TEXT_REFUSED = frozenset({"Cc", "Cs"})

MARKUP = re.compile(r"[<>]")
# What a mail program would turn into a link: a scheme, www., an address, a domain with a path or
# a common top-level domain.
LINKISH = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.\-]*:/{1,3}\S|\bwww\.\S|\S@\S+\.\S|"
    r"\b[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}/|"
    r"\b[\w\-]+\.(?:nl|com|net|org|eu|be|de|fr|uk|info|io|app|biz|online|site|xyz|ru|cn|top|link|click)\b)"
)

CONTROL_MESSAGE = _l("Please remove the invisible or control characters from this field.")
MARKUP_MESSAGE = _l("Please use letters, digits and punctuation only (no < or >).")
LINK_MESSAGE = _l("Web addresses and e-mail addresses are not allowed here.")
EMAIL_MESSAGE = _l("This is not a valid e-mail address.")
ASCII_EMAIL_MESSAGE = _l("We cannot deliver mail to an address with special letters before the @ "
                         "(such as é, ü or letters from other alphabets). Please use another address.")


def _bad_character(value: str, kind: str) -> bool:
    refused = NAME_REFUSED if kind == NAME else TEXT_REFUSED
    for ch in value:
        if ch in BIDI:
            return True
        if kind == TEXT and ch in MULTILINE_OK:
            continue
        if unicodedata.category(ch) in refused:
            return True
    return False


def problem(value: str | None, kind: str = LINE):
    """The (lazy, translatable) message for what is wrong with `value`, or None."""
    if not value:
        return None
    if _bad_character(value, kind):
        return CONTROL_MESSAGE
    if kind in (NAME, TITLE) and MARKUP.search(value):
        return MARKUP_MESSAGE
    if kind == NAME:
        if LINKISH.search(value):
            return LINK_MESSAGE
    return None


def neutralise(value, multiline: bool = True) -> str:
    """`value` as text that is safe to show in a terminal or spreadsheet: controls (but newline and
    tab when `multiline`), surrogates and bidi overrides become U+FFFD. For rows stored before
    these checks existed."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():
        return text
    text = text.replace("\r\n", "\n")
    out = []
    for ch in text:
        if multiline and ch in "\n\t":
            out.append(ch)
        elif ch in BIDI or unicodedata.category(ch) in TEXT_REFUSED:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


class AddressRefused(ValueError):
    """`mail_address` refused an address; `message` says why (lazy, translatable)."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def mail_address(value: str | None) -> str:
    """The address as it is stored and mailed, or AddressRefused."""
    value = (value or "").strip()
    local = value.rpartition("@")[0]
    if problem(value, LINE) or any(ch.isspace() for ch in value):
        raise AddressRefused(EMAIL_MESSAGE)
    if local and not local.isascii():
        raise AddressRefused(ASCII_EMAIL_MESSAGE)
    try:
        # Syntax only: a DNS lookup per sign-up would make the form slow and fail offline.
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise AddressRefused(EMAIL_MESSAGE) from None
    return result.ascii_email or result.normalized


# ---------------------------------------------------------------- WTForms validators

def _validator(kind: str):
    def check(form, field) -> None:
        message = problem(field.data, kind)
        if message is not None:
            raise ValidationError(message)
    check.__name__ = f"{kind}_text"
    return check


name_text = _validator(NAME)
title_text = _validator(TITLE)
line_text = _validator(LINE)
multiline_text = _validator(TEXT)


def email_address(form, field) -> None:
    """Checks and normalises the field (see `mail_address`)."""
    try:
        field.data = mail_address(field.data)
    except AddressRefused as exc:
        raise ValidationError(exc.message) from None
