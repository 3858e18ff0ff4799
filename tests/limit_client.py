"""Run by test_hardening_processes.py as a process of its own: one app (as one gunicorn process
is) that, once told to go on stdin, tries to log in N times and prints the status codes."""
from __future__ import annotations

import json
import re
import sys

from seminar import create_app


def main() -> None:
    settings = json.loads(sys.argv[1])
    attempts = int(sys.argv[2])
    app = create_app(settings)
    client = app.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      client.get("/manage/login").get_data(as_text=True)).group(1)
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together
    codes = []
    for i in range(attempts):
        response = client.post("/manage/login", data={
            "csrf_token": token, "email": f"iemand{i}@bmk.example", "password": "niet het wachtwoord"})
        codes.append(response.status_code)
    print(" ".join(str(code) for code in codes), flush=True)


if __name__ == "__main__":
    main()
