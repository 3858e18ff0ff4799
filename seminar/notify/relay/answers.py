"""What an SMTP answer means for the message and for the pace.

Relays say "slow down" in different words. Four meanings matter here:
- THROTTLED: too fast or too many connections (421, 432, 454, and 450–452 that speak of rates or
  limits). The message is fine: send it again shortly, and slow down. Never a failure.
- QUOTA: the quota for the day (or month) is used up. Exchange Online says it with a 5xx
  (`554 5.2.0 …SubmissionQuotaExceededException`), others with 4xx or 5xx and words like "daily"
  or "quota". Nothing more gets through until the window turns: hold the bulk mail.
- TEMPORARY: this message, now (451 local error, a mailbox busy): try it again later.
- PERMANENT: this message will never go (550 no such mailbox): fail it.
"""
from __future__ import annotations

import enum
import re
import smtplib
from dataclasses import dataclass


class Meaning(enum.Enum):
    THROTTLED = "throttled"
    QUOTA = "quota"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Answer:
    meaning: Meaning
    code: int
    text: str
    connection: bool = False  # about our connections (432, 421): fewer of them, not a slower pace

    def __str__(self) -> str:
        return f"SMTP {self.code}: {self.text}"[:500]


ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# "Quota used up until the window turns": Exchange Online's SubmissionQuotaExceeded, Gmail's
# "Daily user sending limit exceeded" (5.4.5), SES's "Daily message quota exceeded", Mailgun's
# and Postmark's "sending limit"/"quota" answers.
QUOTA_WORDS = re.compile(r"quota ?exceeded|submissionquota|daily (?:\w+ ){0,3}(?:limit|quota)"
                         r"|(?:limit|quota) per day|sending (?:limit|quota)"
                         r"|message limit|recipient limit|limit exceeded for the day", re.I)
# Only words that speak of pace: a plain "try again later" is a temporary refusal of this message.
RATE_WORDS = re.compile(r"throttl|\brate\b|too many|slow down|concurren", re.I)
# Enhanced codes that speak of rates and connections: 4.7.0/4.7.x (policy, e.g. throttling),
# 4.4.5 (system congestion), 4.3.2 (system not accepting messages), 4.2.1 (mailbox rate).
RATE_ENHANCED = {("4", "4", "5"), ("4", "3", "2"), ("4", "2", "1")}
QUOTA_ENHANCED = {("5", "4", "5")}  # Gmail: daily sending limit exceeded


def classify(code: int, text: "str | bytes") -> Answer:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(str(text).split())
    match = ENHANCED.match(text)
    enhanced = match.groups() if match else None
    if enhanced is not None and (enhanced[1:] == ("2", "2") or enhanced[1] == "1"):
        # About this one recipient (x.2.2 mailbox full, x.1.x bad address), whatever the words
        # ("…QuotaExceeded" of a full mailbox): never the relay's quota.
        return Answer(Meaning.PERMANENT if code >= 500 else Meaning.TEMPORARY, code, text)
    if QUOTA_WORDS.search(text) or (enhanced in QUOTA_ENHANCED):
        return Answer(Meaning.QUOTA, code, text)
    if code in (421, 432):
        return Answer(Meaning.THROTTLED, code, text, connection=True)
    if code == 454:
        return Answer(Meaning.THROTTLED, code, text)
    if 450 <= code <= 452:
        rate_like = enhanced is not None and (enhanced[:2] == ("4", "7") or enhanced in RATE_ENHANCED)
        if rate_like or RATE_WORDS.search(text):
            return Answer(Meaning.THROTTLED, code, text)
        return Answer(Meaning.TEMPORARY, code, text)
    if 500 <= code < 600:
        return Answer(Meaning.PERMANENT, code, text)
    return Answer(Meaning.TEMPORARY, code, text)


def classify_exception(exc: BaseException) -> Answer:
    """An exception from smtplib (or the socket under it) → its meaning."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return classify(code, text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return classify(exc.smtp_code, exc.smtp_error)
    # Connection trouble (refused, reset, timed out, closed): not this message's fault.
    return Answer(Meaning.TEMPORARY, 0, f"{exc.__class__.__name__}: {exc}", connection=True)
