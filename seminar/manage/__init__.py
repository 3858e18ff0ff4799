"""The organiser and host portal under /manage: seminars, attendee lists, exports, host digests.

Kept import-light on purpose: `programme.service` imports `manage.digests`, so the views
(`routes`, `auth`, `admin`) are imported only by `create_app` through `manage.routes`.
"""
