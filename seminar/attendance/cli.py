"""`flask --app wsgi seminar attendance ID [--import FILE]` (and the certificate commands)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..models import Seminar
from .imports import ImportProblem, import_participants
from .service import summary


@click.command("attendance")
@click.argument("seminar_id", type=int)
@click.option("--import", "import_file", type=click.File("rb"), default=None,
              help="a participant list exported by Zoom or Teams (CSV)")
@with_appcontext
def attendance_command(seminar_id: int, import_file) -> None:
    """One line per confirmed attendee: EMAIL  MINUTES  attended|absent  SOURCE."""
    seminar = db.session.get(Seminar, seminar_id)
    if seminar is None:
        raise click.ClickException(f"no seminar with id {seminar_id}")
    if import_file is not None:
        data = import_file.read(5 * 1024 * 1024 + 1)
        try:
            result = import_participants(seminar, data)
        except ImportProblem as exc:
            raise click.ClickException(str(exc.message)) from None
        # The report goes to stderr, so stdout stays the attendance lines only.
        click.echo(f"imported: {result.matched} of {result.rows} rows matched {result.people} attendees",
                   err=True)
        for row, address in result.unknown:
            click.echo(f"row {row}: {address} matches no confirmed registration (not imported)", err=True)
        for row, first in result.duplicates:
            click.echo(f"row {row}: the same as row {first} (counted once)", err=True)
        seminar = db.session.get(Seminar, seminar_id)
    for row in summary(seminar).rows:
        state = "attended" if row.attended else "absent"
        click.echo(f"{row.registration.email}  {row.minutes}  {state}  {row.source}")
