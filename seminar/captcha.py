"""A hook for a privacy-friendly captcha (e.g. Friendly Captcha or ALTCHA), off by default.

Switched on by CAPTCHA_VERIFY_URL. The widget posts its solution in CAPTCHA_RESPONSE_FIELD; the
server checks it at the provider (`{"solution", "secret", "sitekey"}` → `{"success": bool}`, the
shape Friendly Captcha's siteverify uses). If the provider cannot be reached, the sign-up is let
through and logged: the confirmation mail stays the main gate, and an outage at a third party
must not close registration.
"""
from __future__ import annotations

import logging

import requests
from flask import current_app

log = logging.getLogger(__name__)


def enabled() -> bool:
    return bool(current_app.config.get("CAPTCHA_VERIFY_URL"))


def widget() -> dict | None:
    """What the sign-up template needs to show the widget, or None when off."""
    if not enabled():
        return None
    c = current_app.config
    return {"script": c.get("CAPTCHA_SCRIPT_URL"), "sitekey": c.get("CAPTCHA_SITE_KEY") or "",
            "css_class": c.get("CAPTCHA_WIDGET_CLASS") or "frc-captcha"}


def csp_sources() -> str:
    return current_app.config.get("CAPTCHA_CSP_SOURCES") or "" if enabled() else ""


def passed(form) -> bool:
    if not enabled():
        return True
    c = current_app.config
    solution = form.get(c.get("CAPTCHA_RESPONSE_FIELD") or "frc-captcha-solution", "")
    if not solution:
        return False
    try:
        answer = requests.post(c["CAPTCHA_VERIFY_URL"], timeout=5, json={
            "solution": solution, "secret": c.get("CAPTCHA_SECRET"), "sitekey": c.get("CAPTCHA_SITE_KEY")})
        return bool(answer.json().get("success"))
    except (requests.RequestException, ValueError) as exc:
        log.warning("captcha provider unreachable, sign-up let through: %s", exc.__class__.__name__)
        return True
