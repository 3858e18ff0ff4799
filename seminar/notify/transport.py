"""Mail with MAIL_SERVER unset: every message is written to instance/mail/ as an .eml file
(`make run` out of the box; the portal's outbox shows them). With MAIL_SERVER set, mail goes to
the relay (relay/)."""
from __future__ import annotations

import os
import time
from pathlib import Path


class FileTransport:
    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def send_bytes(self, data: bytes, job_id: int) -> None:
        """The bytes that would go to the relay (CRLF line ends), as a file with LF line ends."""
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{job_id:06d}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data.replace(b"\r\n", b"\n"))
        os.replace(tmp, self.directory / name)  # appears whole or not at all
