"""The example programme `make run` loads into an empty database: the coming year's three
online seminars for aandachtsfunctionarissen."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from .extensions import db
from .models import Seminar
from .programme.service import create_seminar
from .timeutil import local_zone

PROGRAMME = [
    (3, "De Meldcode in de praktijk: van signaal tot besluit",
     "Wat doe je als aandachtsfunctionaris wanneer een pedagogisch medewerker zich zorgen maakt? "
     "We lopen de vijf stappen van de Meldcode door aan de hand van casussen uit de kinderopvang, "
     "met extra aandacht voor het afwegingskader en het gesprek met Veilig Thuis.",
     "Een aandachtsfunctionaris uit de kinderopvang en een adviseur van Veilig Thuis"),
    (6, "Trauma-sensitief werken en opvoeden",
     "Kinderen die ingrijpende gebeurtenissen meemaken, laten dat vaak zien in hun gedrag. Hoe "
     "herken je dat, en hoe bied je in de groep veiligheid, voorspelbaarheid en verbinding? "
     "Praktische handvatten voor aandachtsfunctionarissen en hun teams.",
     "Een orthopedagoog gespecialiseerd in trauma bij jonge kinderen"),
    (11, "In gesprek met ouders over zorgen",
     "Warm contact met opvoeders is de basis om zorgen op tijd te bespreken. In dit seminar, in de "
     "Week tegen Kindermishandeling, oefenen we met gesprekstechnieken en bespreken we dilemma's "
     "uit de praktijk.",
     "Een gezinscoach en een pedagogisch beleidsmedewerker"),
]


def second_friday_after(today: date, month: int) -> date:
    for year in (today.year, today.year + 1):
        first = date(year, month, 1)
        friday = first + timedelta(days=(4 - first.weekday()) % 7 + 7)
        if friday > today:
            return friday
    raise AssertionError("unreachable")


def load_example_programme(today: date | None = None) -> list[Seminar]:
    """Only into an empty database, and only when LOAD_EXAMPLE_PROGRAMME is on."""
    if not current_app.config["LOAD_EXAMPLE_PROGRAMME"]:
        return []
    if db.session.scalar(select(func.count(Seminar.id))):
        return []
    today = today or date.today()
    created = []
    for month, title, description, speakers in sorted(
            PROGRAMME, key=lambda p: second_friday_after(today, p[0])):
        day = second_friday_after(today, month)
        start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=local_zone())
        created.append(create_seminar(
            title=title, start_at=start, duration_minutes=90, capacity=150,
            description=description, speakers=speakers, publish=True,
        ))
    return created
