"""Portal accounts: password hashing (scrypt via Werkzeug)."""
from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from .models import User

MIN_PASSWORD = 10


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    user.password_hash = generate_password_hash(password, method="scrypt")


def create_or_update(email: str, role: str, password: str, name: str = "") -> User:
    """The CLI's `user create`: one unit of work that takes SQLite's write lock up front (read
    first, write later in a deferred transaction fails when another writer came in between). The
    password is hashed before, so the lock is held for the writes only. ValueError: too short."""
    from .database import write_transaction
    from .extensions import db

    probe = User()
    set_password(probe, password)
    with write_transaction():
        user = db.session.scalar(db.select(User).where(User.email == email)) or User(email=email)
        user.role, user.name = role, name or user.name
        user.password_hash = probe.password_hash
        db.session.add(user)
    return user


def check_password(user: User, password: str) -> bool:
    return bool(user.password_hash) and check_password_hash(user.password_hash, password)


def load_user(user_id: str) -> User | None:
    from .extensions import db

    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None
