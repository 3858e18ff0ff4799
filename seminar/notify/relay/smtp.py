"""One connection to the relay: plain smtplib with a timeout, configured with Flask-Mail's names
(MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS, MAIL_USE_SSL, MAIL_USERNAME, MAIL_PASSWORD) and
MAIL_TIMEOUT, so a relay that stops answering never hangs a worker."""
from __future__ import annotations

import smtplib
import ssl
from typing import Callable, Mapping


def connector(config: Mapping) -> Callable[[], smtplib.SMTP]:
    host, port = config["MAIL_SERVER"], int(config.get("MAIL_PORT") or 25)
    timeout = float(config.get("MAIL_TIMEOUT") or 30)
    use_ssl, use_tls = bool(config.get("MAIL_USE_SSL")), bool(config.get("MAIL_USE_TLS"))
    username, password = config.get("MAIL_USERNAME"), config.get("MAIL_PASSWORD")

    def connect() -> smtplib.SMTP:
        if use_ssl:
            conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
        try:
            conn.ehlo()
            if use_tls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if username and password:
                conn.login(username, password)
        except BaseException:
            close(conn)
            raise
        return conn

    return connect


def close(conn: smtplib.SMTP | None) -> None:
    """QUIT politely; a connection already gone is closed all the same."""
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        try:
            conn.close()
        except OSError:
            pass


def send(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes, options: list[str],
         before_data: Callable[[], bool] | None = None) -> None:
    """`conn.sendmail(sender, [recipient], data, options)`, step by step, so that the message's
    end (where relays count it against their quota) can be paced: `before_data` is called after
    MAIL and RCPT were accepted and before the message goes; it returns False to give up (the
    transaction is reset, the message not sent). Raises what sendmail raises."""
    conn.ehlo_or_helo_if_needed()
    options = list(options)
    if conn.has_extn("size"):
        options.append(f"size={len(data)}")
    code, reply = conn.mail(sender, options)
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = conn.rcpt(recipient)
    if code not in (250, 251):
        _abandon(conn, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    if before_data is not None and not before_data():
        _abandon(conn, 0)
        raise smtplib.SMTPServerDisconnected("stopped before the message was sent")
    code, reply = conn.data(data)
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, reply)


def _abandon(conn: smtplib.SMTP, code: int) -> None:
    """After a refusal: a 421 means the relay is closing; otherwise reset for the next message."""
    if code == 421:
        conn.close()
        return
    try:
        conn.rset()
    except smtplib.SMTPServerDisconnected:
        pass
