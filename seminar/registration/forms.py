"""The public sign-up form. Messages are Dutch by default (Flask-Babel), English on request."""
from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

LOCATION_TYPES = [
    ("kdv", _l("Day care (kinderdagverblijf)")),
    ("bso", _l("Out-of-school care (BSO)")),
    ("gastouder", _l("Childminding agency or childminder (gastouderopvang)")),
    ("peuter", _l("Pre-school (peuteropvang)")),
    ("centraal", _l("Head office or several locations")),
    ("anders", _l("Other")),
]

# Markup or control characters in a name would end up in mails and exports: refuse them.
UNSAFE = re.compile(r"[<>\x00-\x1f\x7f]")


def no_markup(form, field) -> None:
    if field.data and UNSAFE.search(field.data):
        raise ValidationError(_l("Please use letters, digits and punctuation only (no < or >)."))


REGISTER_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]*$")


def register_number(form, field) -> None:
    if field.data and not REGISTER_NUMBER.match(field.data):
        raise ValidationError(_l("Use letters, digits, spaces, dots, slashes and hyphens only."))


def deliverable_email(form, field) -> None:
    try:
        # Syntax only: a DNS lookup per sign-up would make the form slow and fail offline.
        result = validate_email(field.data or "", check_deliverability=False)
    except EmailNotValidError:
        raise ValidationError(_l("This is not a valid e-mail address.")) from None
    field.data = result.normalized


def strip(value):
    return value.strip() if isinstance(value, str) else value


def required(message):
    return DataRequired(message=message)


def required_text(label, missing, max_length: int, check) -> StringField:
    """A text field that must be filled in (`missing` says so), at most `max_length` long,
    stripped of surrounding spaces and passed through `check`."""
    return StringField(label, filters=[strip], validators=[
        required(missing), Length(max=max_length, message=_l("At most %(max)d characters.")), check])


def optional_text(label, max_length: int, check) -> StringField:
    """A text field that may stay empty, at most `max_length` long, stripped and passed through `check`."""
    return StringField(label, filters=[strip], validators=[
        Optional(), Length(max=max_length, message=_l("At most %(max)d characters.")), check])


class SignUpForm(FlaskForm):
    name = required_text(_l("Name"), _l("Please fill in your name."), 120, no_markup)
    email = required_text(_l("E-mail address"), _l("Please fill in your e-mail address."), 254, deliverable_email)
    organisation = required_text(_l("Organisation"), _l("Please fill in your organisation."), 200, no_markup)
    function = optional_text(_l("Function (optional)"), 120, no_markup)
    # Shown only for accredited seminars (the template decides); printed on the certificate and
    # in the accreditation export.
    register_number = optional_text(_l("Register number (optional, e.g. SKJ or Registerplein)"), 30,
                                    register_number)
    location_type = SelectField(
        _l("Type of location"),
        choices=[SelectChoice("", _l("Choose…"))] + [SelectChoice(v, label) for v, label in LOCATION_TYPES],
        validators=[required(_l("Please choose the type of location."))],
        validate_choice=False,
    )
    question = TextAreaField(
        _l("Question for the speaker (optional)"),
        filters=[strip],
        validators=[Optional(), Length(max=1000, message=_l("At most %(max)d characters."))],
    )
    consent = BooleanField(
        _l("I agree that my details are used for this seminar, as described in the privacy notice."),
        validators=[required(_l("Without your consent we cannot register you."))],
    )

    # The interest list (a purpose of its own): unticked unless the person ticks it.
    interest = BooleanField(_l("Send me news about upcoming seminars"))

    # Honeypot: hidden from people (CSS and aria-hidden), filled in by form-filling bots.
    website = StringField(_l("Leave this field empty"))

    def validate_location_type(self, field) -> None:
        if field.data not in dict(LOCATION_TYPES):
            raise ValidationError(_l("Please choose the type of location."))
