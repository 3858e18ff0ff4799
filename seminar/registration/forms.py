"""The public sign-up form. Messages are Dutch by default (Flask-Babel), English on request."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..textcheck import email_address, multiline_text, name_text, title_text

LOCATION_TYPES = [
    ("kdv", _l("Day care (kinderdagverblijf)")),
    ("bso", _l("Out-of-school care (BSO)")),
    ("gastouder", _l("Childminding agency or childminder (gastouderopvang)")),
    ("peuter", _l("Pre-school (peuteropvang)")),
    ("centraal", _l("Head office or several locations")),
    ("anders", _l("Other")),
]

# seminar.textcheck decides what text may hold. The old names, for code that imports them from
# here: no markup and no control or bidi characters (links are fine: other forms take web
# addresses); names of people and organisations take `name_text`, which refuses links too.
no_markup = title_text
deliverable_email = email_address

REGISTER_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]*$")


def register_number(form, field) -> None:
    if field.data and not REGISTER_NUMBER.match(field.data):
        raise ValidationError(_l("Use letters, digits, spaces, dots, slashes and hyphens only."))


def strip(value):
    return value.strip() if isinstance(value, str) else value


def required(message):
    return DataRequired(message=message)


def required_text(label, missing, max_length: int, check, autocomplete: str | None = None,
                  field=StringField) -> StringField:
    """A text field that must be filled in (`missing` says so), at most `max_length` long,
    stripped of surrounding spaces and passed through `check`. `autocomplete`: the field's input
    purpose (WCAG 2.1 SC 1.3.5: "name", "email", "organization", "organization-title", …)."""
    return field(label, filters=[strip], validators=[
        required(missing), Length(max=max_length, message=_l("At most %(max)d characters.")), check],
        render_kw={"autocomplete": autocomplete} if autocomplete else None)


def optional_text(label, max_length: int, check, autocomplete: str | None = None) -> StringField:
    """A text field that may stay empty, at most `max_length` long, stripped and passed through
    `check`; `autocomplete` as for `required_text`."""
    return StringField(label, filters=[strip], validators=[
        Optional(), Length(max=max_length, message=_l("At most %(max)d characters.")), check],
        render_kw={"autocomplete": autocomplete} if autocomplete else None)


class SignUpForm(FlaskForm):
    class Meta:
        # CSRFProtect (create_app) checks the token of every POST before any view runs, this form's
        # included; the page carries it through Flask-WTF's csrf_token() (templates/public/seminar.html).
        # A token field of the form's own would only make (and sign) a second token per POST.
        csrf = False

    name = required_text(_l("Name"), _l("Please fill in your name."), 120, name_text, "name")
    email = required_text(_l("E-mail address"), _l("Please fill in your e-mail address."), 254,
                          email_address, "email", field=EmailField)
    organisation = required_text(_l("Organisation"), _l("Please fill in your organisation."), 200,
                                 name_text, "organization")
    function = optional_text(_l("Function (optional)"), 120, name_text, "organization-title")
    # Shown only for accredited seminars (the template decides); printed on the certificate and
    # in the accreditation export.
    register_number = optional_text(_l("Register number (optional, e.g. SKJ or Registerplein)"), 30,
                                    register_number, "off")
    location_type = SelectField(
        _l("Type of location"),
        choices=[SelectChoice("", _l("Choose…"))] + [SelectChoice(v, label) for v, label in LOCATION_TYPES],
        validators=[required(_l("Please choose the type of location."))],
        validate_choice=False,
    )
    question = TextAreaField(
        _l("Question for the speaker (optional)"),
        filters=[strip],
        validators=[Optional(), Length(max=1000, message=_l("At most %(max)d characters.")),
                    multiline_text],
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
