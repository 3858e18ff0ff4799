"""Portal forms after the seminar: follow-up settings, a correction, a participant list upload."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField, URLField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..registration.forms import no_markup, strip
from ..textcheck import multiline_text


def web_address(form, field) -> None:
    if field.data and not field.data.startswith(("https://", "http://")):
        raise ValidationError(_l("Use a full web address starting with https://."))


def url_field(label):
    return URLField(label, filters=[strip], validators=[
        Optional(), Length(max=1000, message=_l("At most %(max)d characters.")), web_address, no_markup])


class AfterForm(FlaskForm):
    slides_url = url_field(_l("Slides (web address)"))
    recording_url = url_field(_l("Recording (web address)"))
    evaluation_url = url_field(_l("External survey instead of the built-in evaluation (web address)"))
    register_name = StringField(_l("Register (e.g. SKJ, Registerplein)"), filters=[strip], validators=[
        Optional(), Length(max=120, message=_l("At most %(max)d characters.")), no_markup])
    course_number = StringField(_l("Course number"), filters=[strip], validators=[
        Optional(), Length(max=60, message=_l("At most %(max)d characters.")), no_markup])
    points = StringField(_l("Points"), filters=[strip], validators=[
        Optional(), Length(max=20, message=_l("At most %(max)d characters.")), no_markup])
    min_attendance_percent = IntegerField(_l("Minimum attendance for a certificate (percentage of the duration)"),
                                          validators=[DataRequired(_l("Please fill in a percentage.")),
                                                      NumberRange(1, 100, _l("Between %(min)d and %(max)d."))])
    follow_up_delay_minutes = IntegerField(_l("Follow-up mails this many minutes after the end (empty: the default)"),
                                           validators=[Optional(), NumberRange(0, 10080, _l("Between %(min)d and %(max)d."))])
    follow_up_hold = BooleanField(_l("Hold the follow-up mails (nothing goes until released)"))

    def validate_course_number(self, field) -> None:
        if bool(field.data) != bool(self.register_name.data):
            raise ValidationError(_l("Fill in both the register and the course number, or neither."))


class CorrectionForm(FlaskForm):
    attended = SelectField(_l("Attendance"), choices=[SelectChoice("1", _l("attended")), SelectChoice("0", _l("absent"))])
    minutes = IntegerField(_l("Minutes (optional)"), validators=[Optional(), NumberRange(0, 1440)])
    reason = TextAreaField(_l("Reason"), filters=[strip], validators=[
        DataRequired(_l("Please give a reason.")), Length(max=500, message=_l("At most %(max)d characters.")),
        multiline_text])


class ImportForm(FlaskForm):
    participants = FileField(_l("Participant list exported by Zoom or Teams (CSV)"),
                             validators=[DataRequired(_l("Please choose a file."))])
