from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from accounts.models import Role, User
from core.forms import StaffForm
from core.listing import SearchField


class LoginForm(StaffForm):
    email = forms.EmailField(label="E-mail", max_length=254)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)

    def __init__(self, data=None, **kwargs):
        # Scripts and password managers post either `email` or `username`; both mean the e-mail.
        if data is not None and not data.get("email") and data.get("username"):
            data = data.copy()
            data["email"] = data["username"]
        super().__init__(data, **kwargs)


GENERATE, CHOOSE = "generate", "choose"
PASSWORD_CHOICES = [
    (GENERATE, "Generate one and show it to me once"),
    (CHOOSE, "Set it myself"),
]


def _new_password_widget() -> forms.PasswordInput:
    return forms.PasswordInput(attrs={"autocomplete": "new-password"})


class NewPasswordForm(StaffForm):
    """A password chosen for someone else: generated, or typed twice and checked by Django's
    password validators (length, common passwords, likeness to their name and e-mail)."""

    password_choice = forms.ChoiceField(
        label="Password", choices=PASSWORD_CHOICES, initial=GENERATE, widget=forms.RadioSelect
    )
    password1 = forms.CharField(
        label="New password", strip=False, required=False, widget=_new_password_widget()
    )
    password2 = forms.CharField(
        label="New password again", strip=False, required=False, widget=_new_password_widget()
    )

    def password_owner(self) -> User:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("password_choice") != CHOOSE:
            return data
        first, second = data.get("password1", ""), data.get("password2", "")
        if not first:
            self.add_error("password1", "Type the password, or let one be generated.")
        elif first != second:
            self.add_error("password2", "The two passwords differ.")
        else:
            try:
                validate_password(first, self.password_owner())
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class UserCreateForm(NewPasswordForm):
    email = forms.EmailField(label="E-mail", max_length=254)
    name = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETING)

    field_order = ["email", "name", "role", "password_choice", "password1", "password2"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("A user with this e-mail address already exists.")
        return email

    def password_owner(self) -> User:
        return User(
            email=self.cleaned_data.get("email", ""), name=self.cleaned_data.get("name", "")
        )


class PasswordResetForm(NewPasswordForm):
    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def password_owner(self) -> User:
        return self.user


class UserEditForm(StaffForm):
    name = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)


class TokenIssueForm(StaffForm):
    name = forms.CharField(
        label="What the token is for",
        max_length=100,
        help_text=(
            "For example “sheet sync”: shown in the token list. The token itself is shown once."
        ),
    )


class UserFilterForm(StaffForm):
    q = SearchField(placeholder="Name or e-mail")
    role = forms.ChoiceField(choices=[("", "Any role"), *Role.choices], required=False)
    active = forms.ChoiceField(
        label="Status",
        choices=[("", "Any status"), ("true", "Active"), ("false", "Deactivated")],
        required=False,
    )
