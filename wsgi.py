"""Entry point for gunicorn (`gunicorn wsgi:app`) and the Flask CLI (`flask --app wsgi ...`)."""
from dotenv import load_dotenv

# A `.env` file in the project root is read when present (CONTRACT.md). Loaded here rather than
# inside create_app so tests, which build their own app, never pick up a developer's .env.
load_dotenv()

from seminar import create_app  # noqa: E402

app = create_app()
