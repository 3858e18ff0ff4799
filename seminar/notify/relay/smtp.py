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
