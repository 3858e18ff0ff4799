"""Event notifications from video platforms (Zoom)."""
