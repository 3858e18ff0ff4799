"""What the home page shows of the interest list and the feeds."""
from __future__ import annotations

from flask_babel import get_locale

from ..tokens import external_url
from .feeds import webcal_url
from .forms import InterestForm


def index_context(form: InterestForm | None = None) -> dict:
    if form is None:
        form = InterestForm()
        form.language.data = str(get_locale())
    return {"interest_form": form, "webcal_url": webcal_url(),
            "atom_url": external_url("reach.programme_atom")}
