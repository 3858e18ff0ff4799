"""Command line (`flask --app wsgi …`): the same service functions the web uses."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from .extensions import db
from .models import Job, Seminar
from .programme import service as programme
from .timeutil import parse_local, to_local

seminar_cli = AppGroup("seminar", help="Create and manage seminars.")
user_cli = AppGroup("user", help="Portal accounts.")
privacy_cli = AppGroup("privacy", help="Personal data: retention purge, export and erasure.")


def _start(value: str | None):
    if value is None:
        return None
    try:
        return parse_local(value)
    except ValueError:
        raise click.BadParameter('use "YYYY-MM-DD HH:MM"', param_hint="--start") from None


def _hours(value: str | None) -> str | None:
    """'24,1' -> '24,1' (validated): whole hours before the start, up to four weeks."""
    if value is None:
        return None
    try:
        hours = sorted({int(h) for h in value.split(",") if h.strip()}, reverse=True)
    except ValueError:
        raise click.BadParameter("use whole hours separated by commas, e.g. 24,1") from None
    if any(not 0 < h <= 672 for h in hours):
        raise click.BadParameter("hours must be between 1 and 672")
    return ",".join(map(str, hours))


def _get(seminar_id: int) -> Seminar:
    seminar = db.session.get(Seminar, seminar_id)
    if seminar is None:
        raise click.ClickException(f"no seminar with id {seminar_id}")
    return seminar


def _page_url(seminar: Seminar) -> str:
    from .tokens import external_url

    return external_url("public.seminar_page", slug=seminar.slug)


@seminar_cli.command("create")
@click.option("--title", required=True)
@click.option("--start", "start", required=True, help='"YYYY-MM-DD HH:MM" in TIMEZONE')
@click.option("--duration", type=click.IntRange(5, 1440), required=True, help="minutes")
@click.option("--capacity", type=click.IntRange(1, 100000), required=True)
@click.option("--host", "hosts", multiple=True, help="host e-mail (repeatable)")
@click.option("--description", default="")
@click.option("--speakers", default="")
@click.option("--reminder-hours", default="24,1", help="reminders, hours before the start")
@click.option("--digest-hours", default="24,1", help="host attendee lists, hours before the start")
@click.option("--publish", is_flag=True, help="open sign-up and create the meeting")
def create(title, start, duration, capacity, hosts, description, speakers, reminder_hours,
           digest_hours, publish):
    """Create a seminar. The last line printed is `ID URL`."""
    try:
        seminar = programme.create_seminar(
            title=title, start_at=_start(start), duration_minutes=duration, capacity=capacity,
            description=description, speakers=speakers, hosts=list(hosts), publish=publish,
            reminder_hours=_hours(reminder_hours), digest_hours=_hours(digest_hours),
        )
    except programme.SeminarError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{seminar.id} {_page_url(seminar)}")


@seminar_cli.command("list")
def list_seminars():
    """One line per seminar: id, start, title, confirmed/capacity, waitlist."""
    for s in programme.all_seminars():
        state = "" if s.is_published else f"  [{s.state}]"
        click.echo(f"{s.id}  {to_local(s.start_at):%Y-%m-%d %H:%M}  {s.title}  "
                   f"{s.confirmed_count}/{s.capacity} confirmed  {s.waitlist_count} waitlisted{state}")


@seminar_cli.command("publish")
@click.argument("seminar_id", type=int)
def publish(seminar_id):
    """Open sign-up and create the meeting at the platform (through the worker)."""
    try:
        seminar = programme.publish(seminar_id)
    except programme.SeminarError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{seminar.id} {_page_url(seminar)}")


@seminar_cli.command("update")
@click.argument("seminar_id", type=int)
@click.option("--start", default=None, help='"YYYY-MM-DD HH:MM" in TIMEZONE')
@click.option("--duration", type=click.IntRange(5, 1440), default=None)
@click.option("--title", default=None)
@click.option("--capacity", type=click.IntRange(1, 100000), default=None)
@click.option("--description", default=None)
@click.option("--speakers", default=None)
@click.option("--reminder-hours", default=None, help="e.g. 24,1")
@click.option("--digest-hours", default=None, help="e.g. 24,1")
def update(seminar_id, start, duration, title, capacity, description, speakers, reminder_hours,
           digest_hours):
    """Change a seminar; a new time sends every attendee a calendar update."""
    _get(seminar_id)
    try:
        programme.update_seminar(seminar_id, title=title, start_at=_start(start),
                                 duration_minutes=duration, capacity=capacity,
                                 description=description, speakers=speakers,
                                 reminder_hours=_hours(reminder_hours), digest_hours=_hours(digest_hours))
    except programme.SeminarError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"updated {seminar_id}")


@seminar_cli.command("cancel")
@click.argument("seminar_id", type=int)
def cancel(seminar_id):
    """Cancel a seminar: meeting removed, every attendee gets a calendar cancellation."""
    _get(seminar_id)
    programme.cancel_seminar(seminar_id)
    click.echo(f"cancelled {seminar_id}")


@seminar_cli.command("attendees")
@click.argument("seminar_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None)
def attendees(seminar_id, fmt, output):
    """The attendee list, as the portal exports it."""
    from . import exports

    seminar = _get(seminar_id)
    data = exports.as_csv(seminar) if fmt == "csv" else exports.as_xlsx(seminar)
    if output:
        Path(output).write_bytes(data)
        click.echo(f"written {output}")
    elif fmt == "xlsx":
        raise click.ClickException("--format xlsx needs --output FILE")
    else:
        sys.stdout.buffer.write(data)


@seminar_cli.command("load-example")
def load_example():
    """Load the example programme into an empty database (LOAD_EXAMPLE_PROGRAMME=1)."""
    from .example import load_example_programme

    created = load_example_programme()
    click.echo(f"example programme: {len(created)} seminars loaded" if created else
               "example programme: not loaded (database has seminars, or LOAD_EXAMPLE_PROGRAMME=0)")


@seminar_cli.command("outbox")
@click.option("--state", default=None, help="pending, claimed, done or failed")
@click.option("--limit", default=50)
def outbox(state, limit):
    """The outbox: one line per job (newest first)."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Job.state == state)
    for job in db.session.scalars(stmt):
        click.echo(f"{job.id}  {job.kind:28} {job.state:8} attempts={job.attempts}  "
                   f"due {to_local(job.due_at):%Y-%m-%d %H:%M}  {job.last_error or ''}")


@click.command("worker")
@click.option("--once", is_flag=True, help="do everything due now, then exit")
def worker(once):
    """Deliver due outbox messages, platform calls and scheduled jobs."""
    from .jobs.worker import run_due, run_forever

    if once:
        count = run_due()
        click.echo(f"worker: {count} jobs run")
    else:
        run_forever()


@click.command("serve")
@click.option("--port", type=int, default=None)
def serve(port):
    """Serve the site with gunicorn and run the worker beside it (what `make run` does)."""
    from .serve import serve_forever

    sys.exit(serve_forever(port))


@user_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["organiser", "host"]), required=True)
@click.option("--password", default=None, help="prompted for when not given")
@click.option("--name", default="")
def create_user(email, role, password, name):
    """Create (or update) a portal account."""
    from .accounts import create_or_update

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_or_update(email.strip().lower(), role, password, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{user.id} {user.email} {user.role}")


@privacy_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="only show what would be removed")
def privacy_purge(dry_run):
    """Remove personal data past the retention period (also at the video platform)."""
    from . import privacy

    report = privacy.purge(dry_run=dry_run)
    for line in report.lines():
        click.echo(("would purge " if dry_run else "purged ") + line)
    click.echo(f"{'would purge' if dry_run else 'purged'} {report.total} registrations in total")
    for line in report.interest_lines(dry_run):
        click.echo(line)


@privacy_cli.command("export")
@click.option("--email", required=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None)
def privacy_export(email, output):
    """Everything stored about one e-mail address, as JSON."""
    import json

    from . import privacy

    data = json.dumps(privacy.export_person(email), indent=2, ensure_ascii=False)
    if output:
        Path(output).write_text(data, encoding="utf-8")
        click.echo(f"written {output}")
    else:
        click.echo(data)


@privacy_cli.command("erase")
@click.option("--email", required=True)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def privacy_erase(email, yes):
    """Erase one person's data now (active registrations are cancelled first)."""
    from . import privacy

    if not yes:
        click.confirm(f"Erase all data of {email}?", abort=True)
    count = privacy.erase_person(email)
    click.echo(f"erased {count} registrations (and the address's interest-list entry, if any)")


class MigrateCommands(click.Group):
    """`flask db …`: Flask-Migrate's commands (upgrade, migrate, …), loaded only when used."""

    @staticmethod
    def _commands() -> click.Group:
        from flask_migrate.cli import db as commands

        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._commands().get_command(ctx, name)


@click.group("db", cls=MigrateCommands)
@click.option("-d", "--directory", default=None, help="Migration script directory (default: migrations)")
@click.option("-x", "--x-arg", multiple=True, help="Additional arguments for env.py")
@with_appcontext
def migrate_cli(directory, x_arg):
    """Database migrations (Flask-Migrate)."""
    from flask import g

    from .extensions import init_migrate

    init_migrate(current_app)
    g.directory, g.x_arg = directory, x_arg  # read by Flask-Migrate's commands


@seminar_cli.command("announce")
@click.argument("seminar_id", type=int)
@click.option("--dry-run", is_flag=True, help="only print how many would get it")
def announce(seminar_id, dry_run):
    """Announce a published seminar to the interest list (each address at most once)."""
    from .reach.announce import AnnounceRefused, announce as announce_seminar

    try:
        result = announce_seminar(seminar_id, dry_run=dry_run)
    except AnnounceRefused as exc:
        raise click.ClickException(f"not announced: {exc}") from None
    if dry_run:
        click.echo(f"{result.recipients} would get the announcement")
    else:
        click.echo(f"announcement queued for {result.recipients} addresses")


def register_cli(app: Flask) -> None:
    from .attendance.cli import attendance_command

    seminar_cli.add_command(attendance_command)
    app.cli.add_command(migrate_cli)
    app.cli.add_command(seminar_cli)
    app.cli.add_command(user_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(worker)
    app.cli.add_command(serve)
