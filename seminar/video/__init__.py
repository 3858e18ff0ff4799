"""Video platforms behind one provider interface (base.py), chosen by VIDEO_PROVIDER."""
from __future__ import annotations

from flask import current_app

from .base import VideoProvider


def get_provider(name: str | None = None) -> VideoProvider:
    name = (name or current_app.config["VIDEO_PROVIDER"]).lower()
    if name == "jitsi":
        from .jitsi import JitsiProvider
        return JitsiProvider(current_app.config)
    if name == "zoom":
        from .zoom import ZoomProvider
        return ZoomProvider(current_app.config)
    if name == "teams":
        from .teams import TeamsProvider
        return TeamsProvider(current_app.config)
    raise ValueError(f"unknown VIDEO_PROVIDER {name!r} (use jitsi, zoom or teams)")
