"""A local SMTP server (aiosmtpd, as the tests use) in a process of its own.

It notes when each message arrived (CLOCK_MONOTONIC, comparable across processes on Linux) and,
when asked, keeps the bytes, so the mail floor can send exactly the same messages. Running it in
its own process keeps its CPU apart from the benchmark's and from the service's.
"""
from __future__ import annotations

import multiprocessing as mp
import threading
import time

import psutil


class _Handler:
    def __init__(self):
        self.lock = threading.Condition()
        self.arrivals: list[float] = []
        self.recipients: list[str] = []
        self.kept: list[tuple[str, list[str], bytes]] = []
        self.keep = False
        self.sizes = 0

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        with self.lock:
            self.arrivals.append(now)
            self.recipients.append(envelope.rcpt_tos[0] if envelope.rcpt_tos else "")
            self.sizes += len(envelope.content)
            if self.keep:
                self.kept.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            self.lock.notify_all()
        return "250 Message accepted"


def _serve(port: int, conn) -> None:
    from aiosmtpd.controller import Controller

    handler = _Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send("ready")
    try:
        while True:
            cmd, *args = conn.recv()
            if cmd == "stop":
                break
            if cmd == "reset":
                with handler.lock:
                    handler.arrivals.clear()
                    handler.recipients.clear()
                    handler.kept.clear()
                    handler.sizes = 0
                    handler.keep = bool(args and args[0])
                conn.send(True)
            elif cmd == "wait":
                count, timeout = args
                with handler.lock:
                    ok = handler.lock.wait_for(lambda: len(handler.arrivals) >= count, timeout)
                conn.send(ok)
            elif cmd == "stats":
                with handler.lock:
                    conn.send({"count": len(handler.arrivals), "arrivals": list(handler.arrivals),
                               "recipients": list(handler.recipients), "bytes": handler.sizes})
            elif cmd == "kept":
                with handler.lock:
                    conn.send(list(handler.kept))
    finally:
        controller.stop()


class Sink:
    def __init__(self):
        from .common import free_port

        self.port = free_port()
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(self.port, child), daemon=True, name="smtp-sink")
        self.process.start()
        if not self._conn.poll(30) or self._conn.recv() != "ready":
            raise RuntimeError("SMTP sink did not start")
        self._lock = threading.Lock()

    def _ask(self, *cmd):
        with self._lock:
            self._conn.send(cmd)
            return self._conn.recv()

    def reset(self, keep: bool = False) -> None:
        self._ask("reset", keep)

    def wait(self, count: int, timeout: float) -> bool:
        return self._ask("wait", count, timeout)

    def stats(self) -> dict:
        return self._ask("stats")

    def kept(self) -> list[tuple[str, list[str], bytes]]:
        return self._ask("kept")

    def cpu_seconds(self) -> float:
        t = psutil.Process(self.process.pid).cpu_times()
        return t.user + t.system

    def close(self) -> None:
        try:
            with self._lock:
                self._conn.send(("stop",))
        except (OSError, EOFError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
