from __future__ import annotations

from typing import Any

from django import forms

from core.forms import StaffForm
from core.listing import SearchField
from leads.models import Lead, LeadQuality, LeadSource, LeadStatus, Level
from leads.validators import format_phone, normalize_phone

EDITABLE_STATUS_CHOICES = [c for c in LeadStatus.choices if c[0] != LeadStatus.CONVERTED]


class PhoneFormField(forms.CharField):
    """A phone number typed any usual way, cleaned to E.164; shown in the readable
    international form (+91 98470 12345), which cleans back to the same number."""

    def prepare_value(self, value: Any) -> Any:
        # Only a stored (E.164) value is reformatted; what someone typed is shown as typed.
        if isinstance(value, str) and value.startswith("+") and value[1:].isdigit():
            return format_phone(value)
        return value

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not value:
            return value
        try:
            return normalize_phone(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class LeadForm(StaffForm):
    """Shape and types only; the service decides what may change."""

    name = forms.CharField(max_length=150)
    whatsapp = PhoneFormField(max_length=40, label="WhatsApp number")
    email = forms.EmailField(required=False, max_length=254, label="E-mail")
    phone = PhoneFormField(max_length=40, required=False)
    source = forms.ChoiceField(choices=LeadSource.choices)
    status = forms.ChoiceField(choices=EDITABLE_STATUS_CHOICES, initial=LeadStatus.NEW)
    quality = forms.ChoiceField(choices=[("", "—"), *LeadQuality.choices], required=False)
    interested_level = forms.ChoiceField(choices=[("", "—"), *Level.choices], required=False)
    follow_up_date = forms.DateField(required=False, label="Follow-up date")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    @classmethod
    def initial_for(cls, lead: Lead) -> dict[str, Any]:
        return {name: getattr(lead, name) for name in cls.base_fields}


class LeadFilterForm(StaffForm):
    q = SearchField(placeholder="Name, e-mail or number")
    status = forms.ChoiceField(choices=[("", "Any status"), *LeadStatus.choices], required=False)
    converted = forms.ChoiceField(
        choices=[("", "All"), ("false", "Not converted"), ("true", "Converted")], required=False
    )
    follow_up = forms.ChoiceField(
        label="Follow-up",
        choices=[("", "Any date or none"), ("due", "Due today or overdue")],
        required=False,
    )
