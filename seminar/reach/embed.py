"""Who may frame /embed: the origins in EMBED_ORIGINS, and nobody may frame any other page.

The list goes into the embed page's CSP `frame-ancestors`. Each entry must be an origin
(`https://www.example.nl`, optionally `https://*.example.nl` or with a port): anything else
(a path, a quote, a semicolon that would end the directive) stops the app at start-up with a
message naming the entry, rather than silently allowing or refusing more than was meant.
"""
from __future__ import annotations

import re
from functools import lru_cache

EMBED_ENDPOINT = "reach.embed"
ORIGIN = re.compile(r"https?://(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?\Z")


class EmbedOriginsError(ValueError):
    """EMBED_ORIGINS holds something that is not an origin."""


@lru_cache(maxsize=8)
def frame_ancestors(setting: str | None) -> str:
    """The `frame-ancestors` sources for the embed page: the origins, or 'none' when unset."""
    origins = []
    for entry in re.split(r"[\s,]+", (setting or "").strip()):
        if not entry:
            continue
        origin = entry.rstrip("/")
        if not ORIGIN.match(origin):
            raise EmbedOriginsError(
                f"EMBED_ORIGINS: {entry!r} is not an origin such as https://www.example.nl")
        origins.append(origin.lower())
    return " ".join(dict.fromkeys(origins)) or "'none'"
