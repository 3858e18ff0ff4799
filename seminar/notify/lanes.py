"""The two lanes of mail, as the relay sender sees them: what a person is waiting for right now
(interactive) and what goes to many (bulk). Each job carries its lane (jobs/kinds.py declares it
per kind). Interactive mail goes first; bulk keeps a share so it can't starve (relay/sender.py),
and is what a used-up quota holds back (relay/budget.py)."""
from __future__ import annotations

from ..models import Lane

INTERACTIVE, BULK = Lane.INTERACTIVE, Lane.BULK
