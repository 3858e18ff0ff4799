"""The organiser and host portal under /manage: seminars, attendee lists, exports.

The views (`routes`, `auth`, `admin`) are imported by `create_app` through `manage.routes`.
"""
