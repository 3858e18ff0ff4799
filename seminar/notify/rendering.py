"""The text and HTML of a mail, fast: exactly what the two mail templates render, with what a
group of mails shares rendered once.

In a fan-out (a seminar moved: one calendar update per attendee) the mails of one kind and
language differ only in a few paragraphs ("Hello Anouk,", the personal link) and in two links.
The templates' output is their literal text with each value put in (as it is in the plain text; in
the HTML through `own_links` for a paragraph and escaped for a link), and which parts appear depends
only on the mail's shape: subject, details, labels, footer, how many paragraphs, which links. So
per shape the templates are rendered once with markers in the values' places; each mail is then
those pieces with its own values put in, through the very filters the templates use.

A new shape is checked against `render_template` with awkward values (markup characters, links,
addresses) before it is used, and again on its first real mail; any difference sends that shape
the ordinary way for good.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import replace
from flask import current_app, render_template
from markupsafe import escape

from .composed import Composed, language

log = logging.getLogger("seminar.worker")

TEXT, HTML = "email/message.txt", "email/message.html"
MARK = "QZSLOT"  # markers are plain letters and digits: text, escaping and linking leave them alone
MARKS = re.compile(MARK + r"([PAM])(\d*)QZ")
MAX_SHAPES = 64
MAX_PARAGRAPHS = 32  # HTML of paragraphs that recur (the same sentence for everyone), per shape


class _Shape:
    __slots__ = ("text", "html", "urlized", "verified", "broken")

    def __init__(self, text: list, html: list):
        self.text, self.html = text, html  # literal pieces, each followed by a slot but the last
        self.urlized: dict[str, str] = {}
        self.verified = self.broken = False


_shapes: "OrderedDict[tuple, _Shape | None]" = OrderedDict()
_shapes_lock = threading.Lock()


def ordinary(composed: "Composed", lang: str) -> tuple[str, str]:
    return (render_template(TEXT, m=composed, lang=lang), render_template(HTML, m=composed, lang=lang))


def render(composed: "Composed", lang: str) -> tuple[str, str]:
    """(plain text, HTML) of the mail, as `ordinary` renders them."""
    shape = _shape(composed, lang)
    if shape is None or shape.broken:
        return ordinary(composed, lang)
    values = _values(composed)
    if values is None:
        return ordinary(composed, lang)
    out = _fill(shape, values)
    if not shape.verified:
        if out != ordinary(composed, lang):
            shape.broken = True
            log.warning("mail text differs from the templates' rendering; rendering that kind the ordinary way")
            return ordinary(composed, lang)
        shape.verified = True
    return out


def _key(composed: "Composed", lang: str) -> tuple:
    return (lang, language(), current_app.config.get("ORGANISATION_NAME"), composed.subject,
            tuple(composed.details), composed.footer, composed.action[0] if composed.action else None,
            composed.action is not None, len(composed.paragraphs), bool(composed.manage_link))


def _values(composed: "Composed") -> dict[str, str] | None:
    values = {f"P{i}": p for i, p in enumerate(composed.paragraphs)}
    if composed.action:
        values["A"] = composed.action[1]
    if composed.manage_link:
        values["M"] = composed.manage_link
    if any(not isinstance(v, str) or MARK in v for v in values.values()):
        return None  # a value that is markup already, or holds a marker: the ordinary way
    return values


def _probe(composed: "Composed", values: dict[str, str]) -> "Composed":
    return replace(composed, paragraphs=[values[f"P{i}"] for i in range(len(composed.paragraphs))],
                   action=(composed.action[0], values["A"]) if composed.action else None,
                   manage_link=values.get("M"))


def _split(rendered: str) -> list:
    pieces, at = [], 0
    for match in MARKS.finditer(rendered):
        pieces += [rendered[at:match.start()], match.group(1) + match.group(2)]
        at = match.end()
    pieces.append(rendered[at:])
    return pieces


def _shape(composed: "Composed", lang: str) -> _Shape | None:
    key = _key(composed, lang)
    with _shapes_lock:  # a web process's threads share the shapes too
        if key in _shapes:
            _shapes.move_to_end(key)
            return _shapes[key]
    markers = {name: f"{MARK}{name[0]}{name[1:]}QZ" for name in _values(composed) or {}}
    shape = None
    if markers:
        text, html = ordinary(_probe(composed, markers), lang)
        shape = _Shape(_split(text), _split(html))
        # Awkward values through both ways: markup, quotes, a link, an address, a bare domain.
        awkward = {name: f"<b>&amp; \"{name}\" O'Brien</b> https://x.example/{name}?a=1&b=2 "
                         f"{name.lower()}@x.example www.example.com, ok." for name in markers}
        if _fill(shape, awkward) != ordinary(_probe(composed, awkward), lang):
            log.warning("mail templates: a value is not put in as expected; rendering that kind the ordinary way")
            shape = None
        else:
            shape.urlized.clear()
    with _shapes_lock:
        _shapes[key] = shape
        while len(_shapes) > MAX_SHAPES:
            _shapes.popitem(last=False)
    return shape


def _fill(shape: _Shape, values: dict[str, str]) -> tuple[str, str]:
    text = shape.text
    out_text = [text[i] if i % 2 == 0 else values[text[i]] for i in range(len(text))]
    html, urlized = shape.html, shape.urlized
    out_html = []
    for i, piece in enumerate(html):
        if i % 2 == 0:
            out_html.append(piece)
        elif piece[0] == "P":  # a paragraph: `{{ p|own_links }}`
            value = values[piece]
            done = urlized.get(value)
            if done is None:
                done = _urlize(value)
                if len(urlized) < MAX_PARAGRAPHS:
                    urlized[value] = done
            out_html.append(done)
        else:  # a link in an attribute: `{{ url }}`, escaped
            out_html.append(str(escape(values[piece])))
    return "".join(out_text), "".join(out_html)


def forget() -> None:
    """Let go of the paragraphs kept between mails (they hold names): called after every batch."""
    for shape in _shapes.values():
        if shape is not None:
            shape.urlized.clear()


def _urlize(value: str) -> str:
    """What `{{ value|own_links }}` puts into the HTML template: the environment's own filter
    (only the site's own links become links; what a person typed stays text)."""
    return str(escape(current_app.jinja_env.filters["own_links"](value)))
