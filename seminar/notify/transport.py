"""Delivering a built message: SMTP through Flask-Mail's connection, or an .eml file.

One transport is opened per worker batch, so a batch reuses one SMTP connection.
"""
from __future__ import annotations

import os
import smtplib
import time
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path

from flask import current_app

from ..extensions import mail


class TemporaryFailure(Exception):
    """Try again later (connection trouble, 4xx)."""


class PermanentFailure(Exception):
    """The server refused this message for good (5xx): retrying will not help."""


class FileTransport:
    """With MAIL_SERVER unset: every message is written to instance/mail/ as an .eml file."""

    def __init__(self, directory: str):
        self.directory = Path(directory)

    def __enter__(self) -> "FileTransport":
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        return None

    def send(self, msg: EmailMessage, job_id: int) -> None:
        self._write(bytes(msg), job_id)

    def send_bytes(self, data: bytes, recipient: str, job_id: int) -> None:
        self._write(data.replace(b"\r\n", b"\n"), job_id)

    def _write(self, data: bytes, job_id: int) -> None:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{job_id:06d}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.directory / name)  # appears whole or not at all


class SmtpTransport:
    """SMTP with the Flask-Mail settings (MAIL_SERVER, MAIL_PORT, TLS/SSL, login)."""

    def __init__(self):
        self._context = None
        self._connection = None

    def __enter__(self) -> "SmtpTransport":
        return self

    def _open(self):
        if self._connection is None:
            try:
                self._context = mail.connect()
                self._connection = self._context.__enter__()
                # Flask-Mail sets no timeout; a hanging server must not hang the worker.
                self._connection.host.sock.settimeout(current_app.config["MAIL_TIMEOUT"])
            except (OSError, smtplib.SMTPException) as exc:
                self._context = self._connection = None
                raise TemporaryFailure(f"cannot connect to SMTP server: {exc.__class__.__name__}: {exc}") from exc
        return self._connection

    def __exit__(self, *exc) -> None:
        if self._context is not None:
            try:
                self._context.__exit__(None, None, None)
            except (OSError, smtplib.SMTPException):
                pass
        self._context = self._connection = None

    def send(self, msg: EmailMessage, job_id: int) -> None:
        sender = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
        recipient = parseaddr(msg["To"])[1]
        self._deliver(lambda host: host.send_message(msg, from_addr=sender, to_addrs=[recipient]))

    def send_bytes(self, data: bytes, recipient: str, job_id: int) -> None:
        """A message flattened already (CRLF line ends, ASCII): what send_message would send."""
        sender = _envelope_sender(current_app.config["MAIL_DEFAULT_SENDER"])
        self._deliver(lambda host: host.sendmail(sender, [recipient], data))

    def _deliver(self, call) -> None:
        connection = self._open()
        try:
            call(connection.host)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _classify(code, text) from exc
        except smtplib.SMTPResponseException as exc:
            failure = _classify(exc.smtp_code, exc.smtp_error)
            if isinstance(failure, TemporaryFailure):
                self.__exit__()  # the connection may be in an unknown state: start afresh
            raise failure from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.__exit__()
            raise TemporaryFailure(f"SMTP connection failed: {exc.__class__.__name__}: {exc}") from exc


@lru_cache(maxsize=8)
def _envelope_sender(default_sender: str) -> str:
    return parseaddr(default_sender)[1]


def _classify(code: int, text) -> Exception:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if 500 <= code < 600:
        return PermanentFailure(f"SMTP {code}: {message}")
    return TemporaryFailure(f"SMTP {code}: {message}")


def open_transport():
    if current_app.config.get("MAIL_SERVER"):
        return SmtpTransport()
    return FileTransport(current_app.config["MAIL_DIR"])
