from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("password/", views.password_change, name="password"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:user_id>/", views.user_detail, name="user"),
    path("users/<int:user_id>/edit/", views.user_edit, name="user_edit"),
    path(
        "users/<int:user_id>/deactivate/",
        views.user_set_active,
        {"active": False},
        name="user_deactivate",
    ),
    path(
        "users/<int:user_id>/reactivate/",
        views.user_set_active,
        {"active": True},
        name="user_reactivate",
    ),
    path("users/<int:user_id>/password/", views.user_password_reset, name="user_password"),
    path("users/<int:user_id>/tokens/", views.user_token_issue, name="user_token_issue"),
    path(
        "users/<int:user_id>/tokens/<int:token_id>/revoke/",
        views.user_token_revoke,
        name="user_token_revoke",
    ),
]
