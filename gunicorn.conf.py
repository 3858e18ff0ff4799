"""Production gunicorn settings (also what `make run` and the benchmarks use)."""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# 2 cores: two processes with a few threads each; requests mostly wait on the database.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 10
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG")  # off by default: URLs carry personal tokens
errorlog = "-"
# X-Forwarded-* is trusted only through TRUSTED_PROXIES (the app's ProxyFix). Gunicorn's own
# handling would take X-Forwarded-Proto from any loopback client as https (HSTS over plain HTTP).
forwarded_allow_ips = ""
secure_scheme_headers = {}


def post_fork(server, worker):
    # glibc gives each thread that allocates a malloc arena of its own (up to 8 per core); with
    # gthread that fragments memory and each worker's RSS creeps up. Two arenas are plenty for a
    # few threads that mostly wait on the database (MALLOC_ARENA_MAX=2, set at run time).
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass
