from __future__ import annotations

from django import forms

from core.forms import StaffForm
from core.listing import SearchField
from core.money import Currency, MoneyFormField
from invoices.models import InvoiceStatus
from leads.models import Level


class InvoiceForm(StaffForm):
    currency = forms.ChoiceField(choices=Currency.choices)
    discount = MoneyFormField(allow_zero=True, required=False, help_text="Leave empty for none.")
    payable_now = MoneyFormField(
        required=False, label="Payable now", help_text="Leave empty to ask for the full total."
    )
    due_date = forms.DateField(required=False, help_text="Leave empty for 7 days from today.")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ItemForm(StaffForm):
    description = forms.CharField(max_length=200, initial="German Language Course")
    amount = MoneyFormField()
    level = forms.ChoiceField(choices=[("", "—"), *Level.choices], required=False)
    month = forms.CharField(max_length=20, required=False)
    batch = forms.CharField(
        max_length=60,
        required=False,
        label="Batch timing",
        widget=forms.TextInput(attrs={"list": "batch-suggestions"}),
    )


# No fixed number of blank rows: the page adds and removes rows (static/js/invoice_form.js, or
# the "Add an item" and "Remove" buttons, which the server answers, without the script). Any
# number of rows is validated here; an untouched blank row is ignored.
ItemFormSet = forms.formset_factory(
    ItemForm, extra=0, min_num=1, validate_min=True, max_num=20, validate_max=True
)


class CancelForm(StaffForm):
    reason = forms.CharField(max_length=1000, required=False)


class InvoiceFilterForm(StaffForm):
    q = SearchField(placeholder="Invoice number or lead name")
    status = forms.ChoiceField(choices=[("", "Any status"), *InvoiceStatus.choices], required=False)
    currency = forms.ChoiceField(choices=[("", "Any currency"), *Currency.choices], required=False)
    overdue = forms.BooleanField(label="Past due only", required=False)
