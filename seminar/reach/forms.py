"""The interest-list form on the home page and the one-press reserve form."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from ..registration.forms import (LOCATION_TYPES, deliverable_email, no_markup, optional_text, register_number,
                                  required, strip)

LANGUAGES = [("nl", _l("In Dutch")), ("en", _l("In English"))]


class InterestForm(FlaskForm):
    email = StringField(
        _l("E-mail address"), filters=[strip], render_kw={"autocomplete": "email", "type": "email"},
        validators=[required(_l("Please fill in your e-mail address.")),
                    Length(max=254, message=_l("At most %(max)d characters.")), deliverable_email])
    name = StringField(
        _l("Name (optional)"), filters=[strip], render_kw={"autocomplete": "name"},
        validators=[Optional(), Length(max=120, message=_l("At most %(max)d characters.")), no_markup])
    organisation = StringField(
        _l("Organisation (optional)"), filters=[strip], render_kw={"autocomplete": "organization"},
        validators=[Optional(), Length(max=200, message=_l("At most %(max)d characters.")), no_markup])
    language = SelectField(_l("Language of the mails"),
                           choices=[SelectChoice(value, label) for value, label in LANGUAGES],
                           validate_choice=False)
    # Honeypot, as on the sign-up form.
    website = StringField(_l("Leave this field empty"))

    def validate_language(self, field) -> None:
        if field.data not in dict(LANGUAGES):
            raise ValidationError(_l("Please choose a language."))


class ReserveForm(FlaskForm):
    name = StringField(
        _l("Name"), filters=[strip], render_kw={"autocomplete": "name"},
        validators=[required(_l("Please fill in your name.")),
                    Length(max=120, message=_l("At most %(max)d characters.")), no_markup])
    organisation = StringField(
        _l("Organisation"), filters=[strip], render_kw={"autocomplete": "organization"},
        validators=[required(_l("Please fill in your organisation.")),
                    Length(max=200, message=_l("At most %(max)d characters.")), no_markup])
    # As on the sign-up form: the register number (accredited seminars only) goes on the certificate.
    function = optional_text(_l("Function (optional)"), 120, no_markup)
    register_number = optional_text(_l("Register number (optional, e.g. SKJ or Registerplein)"), 30,
                                    register_number)
    location_type = SelectField(
        _l("Type of location"),
        choices=[SelectChoice("", _l("Choose…"))] + [SelectChoice(v, label) for v, label in LOCATION_TYPES],
        validators=[required(_l("Please choose the type of location."))], validate_choice=False)

    def validate_location_type(self, field) -> None:
        if field.data not in dict(LOCATION_TYPES):
            raise ValidationError(_l("Please choose the type of location."))
