"""Portal forms. Labels and messages in English inside lazy_gettext; shown in Dutch by default."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateTimeLocalField, EmailField, IntegerField, PasswordField,
                     SelectField, StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional,
                                ValidationError)

from ..accounts import MIN_PASSWORD
from ..registration.forms import strip
from ..textcheck import (AddressRefused, email_address, line_text, mail_address, multiline_text,
                         name_text, title_text)

HOURS = re.compile(r"^\s*\d{1,3}\s*(,\s*\d{1,3}\s*)*$")


def hours_list(form, field) -> None:
    """"24,1": whole hours before the start, at most a month (720 hours)."""
    text = field.data or ""
    if text.strip() and (not HOURS.match(text) or any(not 0 < int(h) <= 720 for h in text.split(","))):
        raise ValidationError(_l("Use whole hours between 1 and 720, separated by commas, e.g. 24,1."))


def normalise_hours(text: str) -> str:
    return ",".join(str(h) for h in sorted({int(h) for h in text.split(",") if h.strip()}, reverse=True))


def email_list(text: str) -> list[str]:
    return [line.strip().lower() for line in re.split(r"[\s,;]+", text or "") if line.strip()]


def valid_email_list(form, field) -> None:
    for address in email_list(field.data):
        try:
            mail_address(address)
        except AddressRefused:
            raise ValidationError(_l("This is not a valid e-mail address: %(address)s",
                                     address=address)) from None


def valid_email(form, field) -> None:
    email_address(form, field)
    field.data = field.data.lower()


class LocalDateTimeField(DateTimeLocalField):
    """A date and time in TIMEZONE, with a message that says how to write it."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Please fill in date and time, e.g. 2027-06-11 10:00.")) from None


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail address"), filters=[strip],
                       validators=[DataRequired(_l("Please fill in your e-mail address.")),
                                   Length(max=254), line_text],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"),
                             validators=[DataRequired(_l("Please fill in your password.")),
                                         Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail address"), filters=[strip],
                       validators=[DataRequired(_l("Please fill in your e-mail address.")),
                                   Length(max=254), line_text],
                       render_kw={"autocomplete": "email"})


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(_l("Please choose a password.")),
                    Length(min=MIN_PASSWORD, max=200,
                           message=_l("Use at least %(min)d characters.", min=MIN_PASSWORD))],
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[EqualTo("password", message=_l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password"})


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField(_l("Current password"),
                            validators=[DataRequired(_l("Please fill in your current password."))],
                            render_kw={"autocomplete": "current-password"})


class SeminarForm(FlaskForm):
    title = StringField(_l("Title"), filters=[strip],
                        validators=[DataRequired(_l("Please fill in a title.")),
                                    Length(max=200, message=_l("At most %(max)d characters.")),
                                    title_text])
    start = LocalDateTimeField(_l("Start (Dutch time)"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                               validators=[DataRequired(_l("Please fill in date and time, e.g. 2027-06-11 10:00."))])
    duration_minutes = IntegerField(
        _l("Duration in minutes"),
        validators=[InputRequired(_l("Please fill in the duration.")),
                    NumberRange(5, 1440, message=_l("Between %(min)d and %(max)d."))])
    capacity = IntegerField(
        _l("Number of seats"),
        validators=[InputRequired(_l("Please fill in the number of seats.")),
                    NumberRange(1, 100_000, message=_l("Between %(min)d and %(max)d."))])
    speakers = StringField(_l("Speakers"), filters=[strip],
                           validators=[Optional(), Length(max=500), line_text])
    description = TextAreaField(_l("Description"), filters=[strip],
                                validators=[Optional(), Length(max=5000), multiline_text])
    hosts = TextAreaField(_l("Hosts (e-mail addresses, one per line)"), validators=[valid_email_list])
    reminder_hours = StringField(_l("Reminders to attendees (hours before the start)"),
                                 default="24,1", filters=[strip],
                                 validators=[DataRequired(_l("Please fill in at least one hour.")),
                                             hours_list])
    digest_hours = StringField(_l("Attendee lists to hosts (hours before the start)"),
                               default="24,1", filters=[strip],
                               validators=[DataRequired(_l("Please fill in at least one hour.")),
                                           hours_list])
    publish = BooleanField(_l("Publish now: open sign-up and create the meeting"))


class UserForm(FlaskForm):
    email = EmailField(_l("E-mail address"), filters=[strip],
                       validators=[DataRequired(_l("Please fill in the e-mail address.")),
                                   Length(max=254), valid_email],
                       render_kw={"autocomplete": "off"})  # someone else's: never autofill one's own
    name = StringField(_l("Name"), filters=[strip], validators=[Optional(), Length(max=120), name_text],
                       render_kw={"autocomplete": "off"})
    role = SelectField(_l("Role"), choices=[SelectChoice("host", _l("Host (own seminars only)")),
                                            SelectChoice("organiser", _l("Organiser (everything)"))])
    active = BooleanField(_l("Account active"), default=True)
    invite = BooleanField(_l("Send a mail with a link to choose a password"), default=True)
