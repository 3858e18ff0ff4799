"""The mail floor: raw smtplib in a process of its own, sending the very bytes the service sent
(same envelope, same message) over one connection to the same SMTP server.

`python -m bench.smtp_floor PORT FILE` where FILE is a pickle of [(mail_from, rcpt_tos, bytes)].
Prints JSON: the sender's own wall and CPU time.
"""
from __future__ import annotations

import json
import pickle
import smtplib
import sys
import time


def main() -> int:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "rb") as fh:
        messages = pickle.load(fh)
    cpu0, t0 = time.process_time(), time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for mail_from, rcpt_tos, content in messages:
            smtp.sendmail(mail_from, rcpt_tos, content)
    json.dump({"sent": len(messages), "wall": time.monotonic() - t0, "cpu_seconds": time.process_time() - cpu0},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
