from django import forms

from core.forms import StaffForm


class LoginForm(StaffForm):
    email = forms.EmailField(label="E-mail", max_length=254)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)

    def __init__(self, data=None, **kwargs):
        # Scripts and password managers post either `email` or `username`; both mean the e-mail.
        if data is not None and not data.get("email") and data.get("username"):
            data = data.copy()
            data["email"] = data["username"]
        super().__init__(data, **kwargs)
