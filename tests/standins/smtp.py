"""An aiosmtpd controller that goes down the way a mail server does.

aiosmtpd's `Controller.stop()` stops its event loop first. A connection a client still holds
(a worker keeps its relay connections open a moment for the next message) then never gets its
close callback, and its socket is left to the garbage collector: a `ResourceWarning` in whichever
test runs next. This controller closes the connections still open and lets their sockets close
before the loop stops. It also hides aiosmtpd's start-up probe (a connection it makes to itself)
from the connections counted: `start()` returns once that probe is gone.
"""
from __future__ import annotations

import threading
import weakref

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

GRACE = 5.0  # seconds to wait for the loop to close what is open


class TidyController(Controller):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        session = self.make_session()
        self.sessions.add(session)
        return session

    def make_session(self) -> SMTP:
        return SMTP(self.handler, **self.SMTP_kwargs)

    def open_sessions(self) -> int:
        return sum(1 for s in list(self.sessions) if getattr(s, "transport", None) is not None)

    def start(self) -> None:
        super().start()
        self._on_loop(lambda: None)  # the probe's connection_made has run by now
        pause = threading.Event()  # never set: a wait on an outside event, bounded by GRACE
        for _ in range(int(GRACE / 0.01)):
            if self.open_sessions() == 0:
                return
            pause.wait(0.01)
        raise RuntimeError(f"aiosmtpd's start-up probe was still open after {GRACE} s")

    def stop(self, no_assert: bool = False) -> None:
        if self.loop.is_running():
            def close_all() -> None:
                for session in list(self.sessions):
                    transport = getattr(session, "transport", None)
                    if transport is not None:
                        transport.close()  # its connection_lost (and socket close) is queued next
            self._on_loop(close_all)
            self._on_loop(lambda: None)  # after the close callbacks queued above
        super().stop(no_assert)

    def _on_loop(self, fn) -> None:
        """Run `fn` on the controller's loop and wait until it ran."""
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()
        self.loop.call_soon_threadsafe(run)
        done.wait(GRACE)
