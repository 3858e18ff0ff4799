"""The job runtime: durable work written in the transaction that causes it, run by the worker.

- `kinds`: every kind of job, declared once (name, handler, label, key, retry policy, lane).
- `outcome`: what a handler reports for a job (Done, or it raises Retry, Defer or Fail).
- `outbox`: writing jobs, inside the caller's transaction (through a kind: `kinds.X.enqueue(…)`).
- `runner`: claiming due jobs with a lease, running them, recording their outcomes.
- `periodic`: the housekeeping the worker does between batches.

docs/ARCHITECTURE.md walks through it; docs/DELIVERY.md states the guarantees.
"""
