"""Reaching attention officers between seminars: the interest list (double opt-in), announcements
with one-click unsubscribe, the personal reserve link, the programme feeds and the embeddable
listing."""
