"""Every date and datetime field of every form shows its value in a shape the browser can
display, and reads that shape back unchanged."""

from __future__ import annotations

import datetime
import importlib
from pathlib import Path

import pytest
from django import forms
from django.apps import apps
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone, translation

from core.forms import StaffForm
from payments.models import Batch
from tests.html_forms import read_post_form

ROOT = Path(__file__).resolve().parent.parent


def _project_forms() -> list[type[forms.BaseForm]]:
    """Each form class defined in one of the project's apps (their forms modules imported)."""
    ours = [a for a in apps.get_app_configs() if Path(a.path).parent == ROOT]
    for app in ours:
        if (Path(app.path) / "forms.py").exists():
            importlib.import_module(f"{app.name}.forms")
    found, todo = [], [forms.BaseForm]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if any(cls.__module__.startswith(f"{a.name}.") for a in ours):
            found.append(cls)
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


PROJECT_FORMS = _project_forms()
TEMPORAL_FIELDS = [
    (form, name)
    for form in PROJECT_FORMS
    for name, field in form.base_fields.items()
    if isinstance(field, forms.DateField | forms.DateTimeField)
]


def test_the_project_has_forms_with_date_fields_to_check():
    names = {f"{form.__name__}.{name}" for form, name in TEMPORAL_FIELDS}
    assert {"LeadForm.follow_up_date", "InvoiceForm.due_date"} <= names


@pytest.mark.parametrize("form_class", PROJECT_FORMS, ids=lambda c: c.__name__)
def test_every_form_of_the_project_is_a_staff_form(form_class):
    assert issubclass(form_class, StaffForm)


@pytest.mark.parametrize(
    ("form_class", "name"), TEMPORAL_FIELDS, ids=[f"{f.__name__}.{n}" for f, n in TEMPORAL_FIELDS]
)
@pytest.mark.parametrize("language", ["en-gb", "en-us", "de"])
def test_a_date_field_renders_what_the_browser_shows_and_reads_it_back(form_class, name, language):
    field = form_class.base_fields[name]
    if isinstance(field, forms.DateTimeField):
        value = timezone.make_aware(datetime.datetime(2026, 12, 24, 18, 30, 15))
        shown, input_type = "2026-12-24T18:30:15", "datetime-local"
    else:
        value, shown, input_type = datetime.date(2026, 12, 24), "2026-12-24", "date"

    with translation.override(language):
        html = str(form_class(initial={name: value})[name])
        # What the browser sends back is what it was given.
        parsed = form_class.base_fields[name].clean(shown)

    assert f'type="{input_type}"' in html
    assert f'value="{shown}"' in html
    assert parsed == value


@pytest.mark.django_db
def test_saving_a_batch_in_the_admin_untouched_changes_none_of_its_dates(founder):
    batch = Batch.objects.create(
        code="A1-JAN-EVE-01",
        level="A1",
        timing="EVENING",
        start_date=datetime.date(2027, 1, 11),
        created_at=timezone.make_aware(datetime.datetime(2026, 11, 2, 9, 41, 7, 123456)),
    )
    before = model_to_dict(Batch.objects.get(pk=batch.pk))
    client = Client()
    client.force_login(founder)
    url = f"/admin/payments/batch/{batch.pk}/change/"

    data, _ = read_post_form(client.get(url).content.decode(), having="code")
    response = client.post(url, {**data, "_save": "Save"})

    assert response.status_code == 302
    after = Batch.objects.get(pk=batch.pk)
    assert model_to_dict(after) == before
    assert after.created_at == batch.created_at


class _Meeting(StaffForm):
    day = forms.DateField()
    starts_at = forms.DateTimeField()
    reminder_day = forms.DateField(widget=forms.HiddenInput)


def test_a_staff_form_gives_datetime_fields_the_browsers_picker_and_reads_its_value_back():
    value = timezone.make_aware(datetime.datetime(2026, 12, 24, 18, 30, 15))

    with translation.override("en-gb"):
        html = str(_Meeting(initial={"starts_at": value})["starts_at"])
        bound = _Meeting(
            {"day": "2026-12-24", "starts_at": "2026-12-24T18:30:15", "reminder_day": "2026-12-20"}
        )
        assert bound.is_valid(), bound.errors

    assert 'type="datetime-local"' in html and 'value="2026-12-24T18:30:15"' in html
    assert 'step="1"' in html  # else the browser shows, and sends, minutes only
    assert bound.cleaned_data["starts_at"] == value


def test_a_date_field_given_another_widget_on_purpose_keeps_it():
    html = str(_Meeting(initial={"reminder_day": datetime.date(2026, 12, 24)})["reminder_day"])

    assert 'type="hidden"' in html and 'value="2026-12-24"' in html
