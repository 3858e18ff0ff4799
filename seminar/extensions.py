"""Extensions, created unbound and bound to the app in create_app()."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

# Named constraints, so migrations can alter them on every database.
naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
db = SQLAlchemy(metadata=MetaData(naming_convention=naming))
mail = Mail()
babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
# Storage and on/off come from RATELIMIT_STORAGE_URI / RATELIMIT_ENABLED; limits are per view.
limiter = Limiter(key_func=get_remote_address)


def init_migrate(app) -> None:
    """Flask-Migrate (Alembic) for this app, set up when first needed: `flask db …` (see
    cli.MigrateCommands) and the tests. The web and worker processes never need it, and Alembic
    would add ~10 MB to each of them."""
    if "migrate" in app.extensions:
        return
    from pathlib import Path

    from flask_migrate import Migrate

    from .database import render_migration_item

    Migrate(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"),
            render_as_batch=True, compare_type=True, render_item=render_migration_item)
