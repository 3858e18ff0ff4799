"""The one send path: every message and platform call is a row in the job table (the outbox).

`outbox.enqueue` writes work in the caller's transaction; `worker` claims and runs due work;
`mails` composes messages at send time from current data; `transport` delivers them.
"""
