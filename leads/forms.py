from __future__ import annotations

from typing import Any

from django import forms

from core.forms import StaffForm
from leads.models import Lead, LeadStatus
from leads.validators import normalize_phone

EDITABLE_STATUS_CHOICES = [c for c in LeadStatus.choices if c[0] != LeadStatus.CONVERTED]


class LeadForm(StaffForm):
    """Shape and types only; the service decides what may change."""

    name = forms.CharField(max_length=150)
    whatsapp = forms.CharField(max_length=40, label="WhatsApp number")
    email = forms.EmailField(required=False, max_length=254, label="E-mail")
    phone = forms.CharField(max_length=40, required=False)
    source = forms.ChoiceField(choices=Lead._meta.get_field("source").choices)
    status = forms.ChoiceField(choices=EDITABLE_STATUS_CHOICES, initial=LeadStatus.NEW)
    quality = forms.ChoiceField(
        choices=[("", "—"), *Lead._meta.get_field("quality").choices], required=False
    )
    interested_level = forms.ChoiceField(
        choices=[("", "—"), *Lead._meta.get_field("interested_level").choices], required=False
    )
    follow_up_date = forms.DateField(required=False, label="Follow-up date")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def _phone(self, field: str) -> str:
        value = self.cleaned_data.get(field, "")
        if not value:
            return value
        try:
            return normalize_phone(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_whatsapp(self) -> str:
        return self._phone("whatsapp")

    def clean_phone(self) -> str:
        return self._phone("phone")

    @classmethod
    def initial_for(cls, lead: Lead) -> dict[str, Any]:
        return {name: getattr(lead, name) for name in cls.base_fields}


class LeadFilterForm(StaffForm):
    q = forms.CharField(required=False, label="Search")
    status = forms.ChoiceField(choices=[("", "Any status"), *LeadStatus.choices], required=False)
    converted = forms.ChoiceField(
        choices=[("", "All"), ("false", "Not converted"), ("true", "Converted")], required=False
    )
