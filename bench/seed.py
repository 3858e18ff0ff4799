"""Seed a database with one published seminar and N confirmed attendees, through the service's
own functions (sign_up, confirm, the worker), as if N people had signed up and confirmed.

`python -m bench.seed N [--provider jitsi] [--pending]` with DATABASE_URL etc. in the environment;
prints the seminar id. The seat mails of the seeding go to files in a temporary folder (they are
not what is measured); confirmation-address mails are marked sent, as they would be by then.
With --pending the attendees stay pending (not confirmed): the platform fan-out confirms them.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta, timezone


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("--pending", action="store_true", help="sign up only; do not confirm")
    parser.add_argument("--no-worker", action="store_true", help="do not run the worker afterwards")
    parser.add_argument("--links", default=None, help="write the confirmation link paths here (JSON)")
    args = parser.parse_args()

    from sqlalchemy import update

    from seminar import create_app
    from seminar.extensions import db
    from seminar.models import Job
    from seminar.jobs.worker import run_due
    from seminar.programme.service import create_seminar
    from seminar.registration.service import SignUpData, confirm, sign_up

    mail_dir = tempfile.mkdtemp(prefix="seminar-bench-seed-mail-")
    app = create_app({"MAIL_SERVER": None, "MAIL_DIR": mail_dir})
    start = (datetime.now(timezone.utc) + timedelta(days=60)).replace(hour=8, minute=0, second=0, microsecond=0)
    with app.app_context():
        seminar = create_seminar(title="Meldcode in de praktijk: signaleren en bespreken", start_at=start,
                                 duration_minutes=90, capacity=max(args.count, 1), publish=True,
                                 description="Hoe bespreek je een vermoeden met ouders, en wanneer meld je?",
                                 speakers="drs. A. Jansen, Veilig Thuis")
        seminar_id = seminar.id
        if not args.no_worker:
            run_due()  # the meeting exists before anyone confirms, as in real life
        ids = []
        for i in range(args.count):
            reg = sign_up(seminar_id, SignUpData(
                name=f"Deelnemer {i}", email=f"deelnemer{i}@kinderopvang.example",
                organisation="Kinderopvang De Bench", location_type="kdv",
                language="en" if i % 10 == 9 else "nl"))
            ids.append(reg.id)
        db.session.execute(update(Job).where(Job.kind == "mail.confirm_address")
                           .values(state="done", done_at=datetime.now(timezone.utc)))
        db.session.commit()
        if args.links:
            import json

            from seminar.models import Registration
            from seminar.tokens import make_token

            paths = [f"/r/confirm/{make_token('confirm', db.session.get(Registration, reg_id))}" for reg_id in ids]
            with open(args.links, "w") as fh:
                json.dump(paths, fh)
        if not args.pending:
            for reg_id in ids:
                confirm(reg_id)
            if not args.no_worker:
                run_due()
        db.session.remove()
        db.engine.dispose()
    print(seminar_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
