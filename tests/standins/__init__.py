"""Local HTTP stand-ins for third-party APIs (Zoom, Microsoft Graph).

``zoom.ZoomStandIn`` and ``graph.GraphStandIn`` are real HTTP servers on
127.0.0.1 (free port, background thread).  The machinery they share lives
here: server lifecycle, call log, bearer tokens, fault injection, rate limit.
"""
from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time
import traceback
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timezone

from werkzeug.http import http_date
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

Call = namedtuple("Call", "method path query json status")
InvalidRequest = namedtuple("InvalidRequest", "method path error")
InvalidResponse = namedtuple("InvalidResponse", "method path status error")

RANDOM_FAILURE_STATUSES = (429, 500, 502, 503, 504)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # no access log on stderr
        pass


@dataclass
class _Rule:
    """One fail_next()/delay_next() instruction, consumed by matching requests."""

    remaining: int
    path_contains: str | None = None
    method: str | None = None
    status: int = 0
    body: bytes | None = None
    content_type: str | None = None
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0
    skip: int = 0  # matching requests to let through first

    def matches(self, method: str, path: str, is_token: bool) -> bool:
        if self.remaining <= 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.path_contains is None:
            hit = not is_token  # token endpoint only when explicitly targeted
        else:
            hit = self.path_contains in path
        if hit and self.skip > 0:
            self.skip -= 1
            return False
        return hit


def format_retry_after(value) -> str:
    """Seconds (int/float) or a datetime (-> HTTP date); strings pass through."""
    if isinstance(value, datetime):
        return http_date(value)
    if isinstance(value, (int, float)):
        return str(int(math.ceil(value)))
    return str(value)


class StandInServer:
    """Base class. Subclasses implement the hooks at the bottom."""

    json_content_type = "application/json"
    token_lifetime = 3599

    def __init__(self, *, seed: int = 1234):
        self.lock = threading.RLock()
        self.rng = random.Random(seed)  # random faults (reproducible)
        self.id_rng = random.Random(seed + 1)  # ids and tokens (reproducible)
        self.clock = time.monotonic  # token expiry + rate limit; injectable
        self.utcnow = lambda: datetime.now(timezone.utc)  # timestamps; injectable
        self.failure_rate = 0.0
        self.rate_per_second: float | None = None
        self.rate_limit_path_contains: str | None = None  # None: all API calls
        self.calls: list[Call] = []
        self.invalid_requests: list[InvalidRequest] = []
        self.invalid_responses: list[InvalidResponse] = []
        self.token_requests = 0
        self.tokens: dict[str, float] = {}  # token -> expiry on self.clock
        self._faults: list[_Rule] = []
        self._delays: list[_Rule] = []
        self._rate_next_ok: float | None = None
        self._server = None
        self._thread = None
        self._stopping = threading.Event()
        self.port: int | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self):
        if self._server is None:
            self._stopping.clear()
            self._server = make_server(
                "127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler
            )
            self.port = self._server.server_port
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._stopping.set()  # wakes up delayed requests
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("stand-in not started")
        return f"http://127.0.0.1:{self.port}"

    def assert_clean(self):
        """Fail if any request was invalid or any own response broke the contract."""
        problems = [f"invalid request: {r}" for r in self.invalid_requests]
        problems += [f"invalid stand-in response: {r}" for r in self.invalid_responses]
        assert not problems, "\n".join(problems)

    # ------------------------------------------------------------------ tokens
    def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)  # never equal across stand-in instances
        with self.lock:
            self.tokens[token] = self.clock() + self.token_lifetime
            return token

    def expire_tokens(self):
        """Invalidate every token issued so far (simulates expiry)."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = float("-inf")

    def _token_state(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            return "missing"
        if scheme.lower() != "bearer" or token not in self.tokens:
            return "invalid"
        return "ok" if self.clock() < self.tokens[token] else "expired"

    # --------------------------------------------------------- fault injection
    def fail_next(self, n=1, status=429, *, retry_after=None, body=None,
                  content_type=None, headers=None, path_contains=None, method=None, skip=0):
        """Answer the next ``n`` matching requests with ``status`` (after letting ``skip`` of
        them through).

        ``body`` (bytes) replaces the API's usual error JSON, e.g. garbage HTML
        with ``status=200``.  ``retry_after``: seconds or a datetime (sent as
        an HTTP date) or a literal string.  The token endpoint is only
        affected if ``path_contains`` names it.
        """
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = format_retry_after(retry_after)
        with self.lock:
            self._faults.append(_Rule(n, path_contains, method, status, body, content_type, hdrs, skip=skip))

    def delay_next(self, n, seconds, *, path_contains=None, method=None):
        """Sleep ``seconds`` server-side before handling the next ``n`` matching requests.

        The request is still processed afterwards (as a real slow server would),
        even if the client has given up.
        """
        with self.lock:
            self._delays.append(_Rule(n, path_contains, method, seconds=seconds))

    def clear_faults(self):
        with self.lock:
            self._faults.clear()
            self._delays.clear()
            self.failure_rate = 0.0
            self.rate_per_second = None

    def _take(self, rules, method, path, is_token):
        with self.lock:
            for rule in rules:
                if rule.matches(method, path, is_token):
                    rule.remaining -= 1
                    return rule
        return None

    def _fault_response(self, rule: _Rule) -> Response:
        headers = {**self.fault_headers(rule.status), **rule.headers}
        body = rule.body if rule.body is not None else self.fault_body(rule.status)
        ctype = rule.content_type or self.json_content_type
        return Response(body, status=rule.status, headers=headers, content_type=ctype)

    def _random_failure(self, is_token):
        if is_token or not self.failure_rate:
            return None
        with self.lock:
            if self.rng.random() >= self.failure_rate:
                return None
            status = self.rng.choice(RANDOM_FAILURE_STATUSES)
        hdrs = {"Retry-After": "1"} if status == 429 else {}
        return self._fault_response(_Rule(1, status=status, headers=hdrs))

    def _rate_limit(self, path):
        rate = self.rate_per_second
        if not rate or (self.rate_limit_path_contains or "") not in path:
            return None
        now = self.clock()
        with self.lock:
            if self._rate_next_ok is not None and now < self._rate_next_ok:
                return self.rate_limited_response(self._rate_next_ok - now)
            self._rate_next_ok = now + 1.0 / rate
        return None

    # -------------------------------------------------------------------- WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception:  # a stand-in bug: make it loud
            self.invalid_responses.append(
                InvalidResponse(request.method, request.path, 500, traceback.format_exc()))
            response = Response("stand-in crashed", status=500)
        self._record(request, response.status_code)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        method, path = request.method, request.path
        is_token = self.is_token_path(path)
        delay = self._take(self._delays, method, path, is_token)
        if delay:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, method, path, is_token)
        if is_token:
            with self.lock:
                self.token_requests += 1  # every attempt, faulted ones included
                if not fault:
                    return self.handle_token(request)
            return self._fault_response(fault)
        invalid = self.validate_request(request)  # always checked and recorded
        if invalid:
            self.record_invalid(request, invalid[1])
        if fault:
            return self._fault_response(fault)
        response = self._random_failure(is_token)
        if response is not None:
            return response
        state = self._token_state(request)
        if state != "ok":
            return self.auth_error(state)
        if invalid:
            return self.invalid_error(*invalid)
        response = self._rate_limit(path)
        if response is not None:
            return response
        with self.lock:
            response = self.handle_api(request)
        problem = self.check_response(request, response)
        if problem:
            self.invalid_responses.append(
                InvalidResponse(method, path, response.status_code, problem))
        return response

    def record_invalid(self, request: Request, error: str):
        with self.lock:
            self.invalid_requests.append(InvalidRequest(request.method, request.path, error))

    def _record(self, request: Request, status: int):
        body = None
        if not self.is_token_path(request.path):
            data = request.get_data(cache=True)
            if data:
                try:
                    body = json.loads(data)
                except ValueError:
                    body = data.decode("utf-8", "replace")
        with self.lock:
            self.calls.append(Call(request.method, request.path,
                                   request.args.to_dict(), body, status))

    def json_response(self, body, status=200, headers=None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers or {},
                        content_type=self.json_content_type)

    # ------------------------------------------------------- subclass hooks
    def is_token_path(self, path: str) -> bool:
        raise NotImplementedError

    def handle_token(self, request: Request) -> Response:
        raise NotImplementedError

    def validate_request(self, request: Request):
        """Return None or (http_status, message)."""
        return None

    def handle_api(self, request: Request) -> Response:
        raise NotImplementedError

    def check_response(self, request: Request, response: Response):
        """Return None or a description of how ``response`` breaks the contract."""
        return None

    def auth_error(self, state: str) -> Response:
        raise NotImplementedError

    def invalid_error(self, status: int, message: str) -> Response:
        raise NotImplementedError

    def fault_body(self, status: int) -> bytes:
        return json.dumps({"status": status}).encode()

    def fault_headers(self, status: int) -> dict:
        return {}

    def rate_limited_response(self, wait_seconds: float) -> Response:
        return self.json_response({"status": 429}, 429,
                                  {"Retry-After": format_retry_after(max(wait_seconds, 1))})
