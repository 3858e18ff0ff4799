"""The outbox under faults: SMTP down, SMTP failing mid-batch, a worker killed between claiming
and sending, and two workers at once. Afterwards every message is sent, each exactly once."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from seminar.extensions import db
from seminar.models import Job
from seminar.jobs.runner import claim
from seminar.jobs.worker import run_due
from seminar.registration.service import SignUpData, sign_up
from seminar.timeutil import utcnow

from .helpers import later, make_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(smtp_app):
    return smtp_app


def sign_up_many(seminar, n: int) -> list[str]:
    addresses = [f"persoon{i:03d}@kinderopvang.example" for i in range(n)]
    for i, address in enumerate(addresses):
        sign_up(seminar.id, SignUpData(name=f"Persoon {i}", email=address, organisation="KDV",
                                       location_type="kdv"))
    return addresses


def mail_jobs(state=None):
    stmt = db.select(Job).where(Job.kind.like("mail.%"))
    if state:
        stmt = stmt.where(Job.state == state)
    return db.session.scalars(stmt).all()


def assert_each_once(smtp, addresses):
    received = Counter(m.envelope_to[0] for m in smtp.messages)
    assert received == Counter(addresses)


def test_smtp_down_for_a_whole_run_then_back(smtp, make_seminar):
    seminar = make_seminar()
    addresses = sign_up_many(seminar, 5)
    smtp.stop()
    run_due()
    assert smtp.messages == []
    jobs = mail_jobs()
    assert {j.state for j in jobs} == {"pending"}
    # One connection attempt for the batch, not one per message: the rest were handed back.
    assert sorted(j.attempts for j in jobs) == [0, 0, 0, 0, 1]
    assert any("connect" in (j.last_error or "") for j in jobs)

    run_due()  # still backing off: nothing is due
    smtp.start()
    run_due(now=later())
    assert_each_once(smtp, addresses)
    assert {j.state for j in mail_jobs()} == {"done"}


def test_smtp_failing_mid_batch(smtp, make_seminar):
    seminar = make_seminar()
    addresses = sign_up_many(seminar, 6)
    smtp.recorder.fail_data_after = 2
    run_due()
    assert len(smtp.messages) == 2
    assert len(mail_jobs("done")) == 2 and len(mail_jobs("pending")) == 4
    smtp.recorder.fail_data_after = None
    run_due(now=later())
    assert_each_once(smtp, addresses)


def test_work_claimed_by_a_worker_that_died_is_taken_again(app, smtp, make_seminar):
    seminar = make_seminar()
    addresses = sign_up_many(seminar, 3)
    claimed = claim("worker-that-died")
    assert len(claimed) == 4  # the meeting job and three mails
    run_due()
    assert smtp.messages == []  # the lease still holds
    lease = app.config["WORKER_LEASE_SECONDS"]
    run_due(now=utcnow() + timedelta(seconds=lease + 1))
    assert_each_once(smtp, addresses)


def test_a_worker_process_killed_while_sending(app, smtp, make_seminar, db_url, tmp_path):
    """A real `flask worker` process is killed with SIGKILL in the middle of an SMTP transaction."""
    seminar = make_seminar()
    addresses = sign_up_many(seminar, 2)
    reached_data, release = threading.Event(), threading.Event()
    original = smtp.recorder.handle_DATA

    async def stall_until_released(server, session, envelope):
        # Every message stalls at DATA until the worker is dead (it sends over several
        # connections at once, so the second must not slip through while the first stalls).
        if not release.is_set():
            reached_data.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
            return "451 4.3.0 connection went away"
        return await original(server, session, envelope)

    smtp.recorder.handle_DATA = stall_until_released
    env = dict(os.environ, DATABASE_URL=db_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port),
               SECRET_KEY="test-secret", BASE_URL="http://seminar.test",
               MAIL_DEFAULT_SENDER=app.config["MAIL_DEFAULT_SENDER"], VIDEO_PROVIDER="jitsi")
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert reached_data.wait(60), "the worker never reached DATA"
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()
    db.session.rollback()
    assert smtp.messages == []
    assert any(j.state == "claimed" for j in mail_jobs())
    run_due(now=utcnow() + timedelta(seconds=app.config["WORKER_LEASE_SECONDS"] + 1))
    assert_each_once(smtp, addresses)


def test_two_workers_at_once_never_send_twice(app, smtp, make_seminar, db_url, tmp_path):
    seminar = make_seminar(capacity=200)
    addresses = sign_up_many(seminar, 60)
    start = threading.Barrier(2)
    errors = []
    # Each worker its own app, made here: building apps in two threads at once can trip CPython
    # 3.11's ast module (werkzeug compiles routes with it), which is not what this test is about.
    apps = [make_app(db_url, tmp_path, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, WORKER_BATCH_SIZE=5)
            for _ in range(2)]

    def worker(name, other):
        with other.app_context():
            try:
                start.wait()
                run_due(worker_id=name)
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()
                db.engine.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}", apps[i])) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    db.session.rollback()
    assert_each_once(smtp, addresses)
    assert {j.state for j in mail_jobs()} == {"done"}


def test_accepted_mails_recorded_together_leave_a_lost_lease_alone(make_seminar, caplog):
    """Outcomes recorded together (one executemany): a job another worker took over meanwhile
    stays theirs, the others are done, and the lost lease is logged."""
    from seminar.jobs.outcome import Done
    from seminar.jobs.recorder import Recorder, outcome_connection
    from seminar.jobs.runner import Batch

    seminar = make_seminar()
    sign_up_many(seminar, 3)
    jobs = [job for job in claim("worker-a", limit=10) if job.kind.startswith("mail.")]
    assert len(jobs) == 3
    taken = jobs[1].id
    db.session.execute(db.update(Job).where(Job.id == taken).values(claimed_by="worker-b"))
    db.session.commit()
    connection = outcome_connection()
    assert connection is not None
    try:
        Recorder(Batch("worker-a", utcnow())).done_together(
            [(job, Done(fields={"recipient": f"r{job.id}@x.example", "message": "m"})) for job in jobs], connection)
    finally:
        connection.close()
    db.session.rollback()
    rows = {job.id: (job.state, job.claimed_by, job.recipient) for job in mail_jobs()}
    assert rows[taken] == ("claimed", "worker-b", None)
    assert [rows[job.id] for job in jobs if job.id != taken] == \
        [("done", None, f"r{job.id}@x.example") for job in jobs if job.id != taken]
    assert any("leases lost" in record.getMessage() and str(taken) in record.getMessage() for record in caplog.records)


def test_a_batch_stopped_midway_records_what_the_server_accepted(smtp, make_seminar, monkeypatch):
    """Ctrl-C (or an error) in the middle of a batch: the mails the server already accepted are
    recorded on the way out, so nobody gets theirs twice when the rest is taken again."""
    from seminar.notify import delivery
    from seminar.jobs.runner import run_batch

    seminar = make_seminar(capacity=50)
    addresses = sign_up_many(seminar, 12)
    real = delivery._prepare
    composed = []

    def prepare(job):
        composed.append(job)
        if len(composed) == 10:
            smtp.recorder.wait_for(lambda messages: len(messages) >= 8, 10)
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(delivery, "_prepare", prepare)
    with pytest.raises(KeyboardInterrupt):
        run_batch()
    db.session.rollback()
    assert Counter(job.state for job in mail_jobs())["done"] >= 8

    monkeypatch.setattr(delivery, "_prepare", real)
    run_due(now=later())
    assert_each_once(smtp, addresses)
