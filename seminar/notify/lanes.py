"""Which mail a person is waiting for right now (interactive) and which goes to many (bulk).

Interactive mail goes first; bulk mail keeps a share so it can't starve (relay/sender.py), and is
what a used-up quota holds back (relay/budget.py).
"""
from __future__ import annotations

INTERACTIVE, BULK = "interactive", "bulk"

INTERACTIVE_KINDS = frozenset({
    "mail.confirm_address", "mail.already_registered", "mail.seat_confirmed", "mail.promoted",
    "mail.waitlisted", "mail.registration_cancelled", "mail.password_reset", "mail.relay_held",
})


def lane_of(kind: str) -> str:
    return INTERACTIVE if kind in INTERACTIVE_KINDS else BULK


def bulk_mail_kinds(kinds) -> list[str]:
    return [kind for kind in kinds if kind.startswith("mail.") and lane_of(kind) == BULK]
