"""Sending through a real relay: its connections and quota shared by every worker (budget.py,
control.py, store.py, redis_store.py), its answers understood (answers.py), messages sent over
several reused connections (sender.py, smtp.py)."""
