"""The bytes of a mail, fast: exactly what `build_message` and the email package's generator make,
with what a group of messages shares generated once.

Building a message with the email package costs milliseconds, almost all of it in parsing and
folding the same headers and MIME structure again for every recipient. In a fan-out (a seminar
moved: one calendar update per attendee) the messages of one kind differ only in To, Date,
Message-ID and the encoded bodies. So per group (same subject, same parts) the message is built
once by `build_message` with placeholders in those places and flattened as `smtplib` would; each
message then is that skeleton with its own header lines (folded by the email package's policy)
and bodies put in: quoted-printable line by line with `email.quoprimime.body_encode` (what
`set_content` uses), base64 with `base64.encodebytes` (the same 76-character lines). Only public
names: no private encoders of the email package.

Every new skeleton is checked once against a message built the ordinary way (same boundaries,
date and Message-ID): if the bytes differ, that group falls back to the ordinary way. Addresses
that are not ASCII (SMTPUTF8) always take the ordinary way.
"""
from __future__ import annotations

import base64
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from email.quoprimime import body_encode
from email.generator import BytesGenerator
from email.utils import formatdate, parseaddr
from io import BytesIO

from flask import current_app

from .mails import POLICY as MESSAGE_POLICY, Composed, address_header, build_message, new_message_id

log = logging.getLogger("seminar.worker")

POLICY = MESSAGE_POLICY  # build_message's policy
SMTP_POLICY = POLICY.clone(linesep="\r\n")  # what smtplib.send_message flattens with
NLCRE = re.compile(r"\r\n|\r|\n")  # how the generator splits payload lines

SLOT_TO = "slot-to@slot.invalid"
SLOT_DATE = "Mon, 01 Jan 1900 00:00:00 -0000"
SLOT_ID = "<slot-id@slot.invalid>"
SLOT_TEXT, SLOT_HTML, SLOT_ICS = "@@SLOT-TEXT@@", "@@SLOT-HTML@@", "@@SLOT-ICS@@"
MAX_SKELETONS = 64


@dataclass
class Skeleton:
    pieces: list[str]          # literal text; a slot name follows each piece but the last
    slots: list[str]
    boundaries: list[str]
    verified: bool = False
    broken: bool = False


_skeletons: "OrderedDict[tuple, Skeleton | None]" = OrderedDict()


# Header values the policy writes unchanged on one line: a plain `Name <address>` (or a bare
# address) of ASCII atoms, formatdate's UTC date, make_msgid's id. Anything else (quoted or encoded
# names, long lines) goes through the policy. tests/test_fastmime.py holds the two ways side by side.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
PLAIN = {
    "To": re.compile(rf"(?:{_ATEXT}(?: {_ATEXT})* <{_ADDRESS}>|{_ADDRESS})\Z"),
    "Date": re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} -0000\Z"),
    "Message-ID": re.compile(rf"<[0-9]+\.[0-9]+\.[0-9]+\.job[0-9]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>\Z"),
}


def _fold(name: str, value: str) -> str:
    """One header line as the generator writes it (CRLF)."""
    plain = PLAIN.get(name)
    if (plain is not None and len(name) + 2 + len(value) <= POLICY.max_line_length and "=?" not in value
            and plain.match(value)):  # "=?…?=" would be an encoded word, which the policy decodes
        return f"{name}: {value}\r\n"
    return policy_fold(name, value)


def policy_fold(name: str, value: str) -> str:
    return SMTP_POLICY.fold(name, POLICY.header_store_parse(name, value)[1])


def _crlf(payload: str) -> str:
    return NLCRE.sub("\r\n", payload)


# Quoted-printable lines already encoded (bytes of one line -> its encoding, CRLF): most lines of
# a fan-out's mails are the same in every mail. Holds names and links: emptied after every batch.
_qp_lines: dict[bytes, str] = {}
MAX_QP_LINES = 4096


def _qp(text: str) -> str:
    """The quoted-printable body `set_content(text, cte="quoted-printable")` makes, CRLF line
    ends, line by line.

    `set_content` joins the UTF-8 lines with LF and `body_encode` encodes each line on its own
    (the line ends it leaves alone; everything it escapes is escaped before it splits), so the
    body's encoding is the encodings of its lines one after the other, each ending in LF. An
    empty text is one empty line."""
    lines = text.encode("utf-8").splitlines()
    if not lines:
        return "\r\n"
    out = []
    for line in lines:
        done = _qp_lines.get(line)
        if done is None:
            done = _crlf(body_encode(line.decode("latin-1") + "\n", POLICY.max_line_length))
            if len(_qp_lines) >= MAX_QP_LINES:
                _qp_lines.clear()
            _qp_lines[line] = done
        out.append(done)
    return "".join(out)


def _base64(data: bytes) -> str:
    """Base64 in lines of 76 characters, each ending in LF, as `set_content` writes a binary part
    (at the policy's 78-character lines)."""
    return base64.encodebytes(data).decode("ascii")


def forget() -> None:
    """Let go of the lines kept between mails (they hold names and links)."""
    _qp_lines.clear()


def _flatten(msg) -> str:
    out = BytesIO()
    BytesGenerator(out, policy=SMTP_POLICY).flatten(msg, linesep="\r\n")
    return out.getvalue().decode("ascii")


def _key(composed: Composed) -> tuple:
    config = current_app.config
    return (composed.subject, bool(composed.invite), composed.invite_method,
            config["MAIL_DEFAULT_SENDER"], config.get("MAIL_REPLY_TO"),
            tuple(name for name, _ in composed.headers))


def _make_skeleton(composed: Composed) -> Skeleton | None:
    # Extra headers (List-Unsubscribe: a link per recipient) are slots too, one per header.
    probe = replace(composed, rendered=(SLOT_TEXT, SLOT_HTML),
                    invite=SLOT_ICS.encode() if composed.invite else None,
                    headers=[(name, _header_slot(i)) for i, (name, _) in enumerate(composed.headers)])
    msg = build_message(probe, "", SLOT_TO, 0, date=SLOT_DATE, message_id=SLOT_ID)
    text = _flatten(msg)
    boundaries = [part.get_boundary() for part in msg.walk() if part.is_multipart()]
    marks = {
        _fold("To", SLOT_TO): "to",
        _fold("Date", SLOT_DATE): "date",
        _fold("Message-ID", SLOT_ID): "id",
        _crlf(SLOT_TEXT + "\n"): "text",
        _crlf(SLOT_HTML + "\n"): "html",
        **{_fold(name, _header_slot(i)): f"h{i}" for i, (name, _) in enumerate(composed.headers)},
    }
    if composed.invite:
        marks[_crlf(SLOT_ICS + "\n")] = "ics"
        marks[_crlf(_base64(SLOT_ICS.encode()))] = "ics64"
    pattern = re.compile("|".join(re.escape(m) for m in sorted(marks, key=len, reverse=True)))
    pieces, slots, at = [], [], 0
    for match in pattern.finditer(text):
        pieces.append(text[at:match.start()])
        slots.append(marks[match.group(0)])
        at = match.end()
    pieces.append(text[at:])
    if sorted(slots) != sorted(marks.values()):
        log.warning("mail skeleton: placeholders not found once each; using the email package")
        return None
    return Skeleton(pieces, slots, boundaries)


def _header_slot(index: int) -> str:
    return f"slot-header-{index}"


def _skeleton(composed: Composed) -> Skeleton | None:
    key = _key(composed)
    if key in _skeletons:
        _skeletons.move_to_end(key)
        return _skeletons[key]
    skeleton = _make_skeleton(composed)
    _skeletons[key] = skeleton
    while len(_skeletons) > MAX_SKELETONS:
        _skeletons.popitem(last=False)
    return skeleton


def message_bytes(composed: Composed, to_name: str, to_address: str, job_id: int) -> tuple[bytes, str] | None:
    """(the bytes smtplib.send_message would send, the same message as a string with LF line ends),
    or None when this message must be built the ordinary way."""
    if composed.attachments:
        return None  # attachments (a certificate) take the ordinary way
    sender = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
    if not (to_address.isascii() and sender.isascii()):
        return None  # SMTPUTF8: send_message's international path
    skeleton = _skeleton(composed)
    if skeleton is None or skeleton.broken:
        return None
    text, html = composed.rendered
    values = {
        "to": _fold("To", str(address_header(to_name, to_address))),
        "date": _fold("Date", formatdate(localtime=False)),
        "id": _fold("Message-ID", new_message_id(job_id)),
        "text": _qp(text),
        "html": _qp(html),
        **{f"h{i}": _fold(name, value) for i, (name, value) in enumerate(composed.headers)},
    }
    if composed.invite:
        values["ics"] = _qp(composed.invite.decode("utf-8"))
        values["ics64"] = _crlf(_base64(composed.invite))
    for boundary in skeleton.boundaries:
        if any(boundary in value for value in values.values()):
            return None  # the generator would have chosen another boundary
    parts = []
    for piece, slot in zip(skeleton.pieces, skeleton.slots):
        parts.append(piece)
        parts.append(values[slot])
    parts.append(skeleton.pieces[-1])
    out = "".join(parts)
    if not out.isascii():
        return None
    if not skeleton.verified:
        expected = _ordinary(composed, to_name, to_address, job_id, values, skeleton)
        if expected != out:
            skeleton.broken = True
            log.warning("mail skeleton differs from the email package's message; using the email package")
            return None
        skeleton.verified = True
    return out.encode("ascii"), out.replace("\r\n", "\n")


def _ordinary(composed, to_name, to_address, job_id, values, skeleton) -> str:
    """The same message built the ordinary way, with the skeleton's boundaries, date and id."""
    date = POLICY.header_store_parse("Date", values["date"].split(":", 1)[1].strip())[1]
    message_id = values["id"].split(":", 1)[1].strip()
    msg = build_message(composed, to_name, to_address, job_id, date=str(date), message_id=message_id)
    multiparts = [part for part in msg.walk() if part.is_multipart()]
    if len(multiparts) != len(skeleton.boundaries):
        return ""
    for part, boundary in zip(multiparts, skeleton.boundaries):
        part.set_boundary(boundary)
    return _flatten(msg)
