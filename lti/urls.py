from __future__ import annotations

from django.urls import path

from lti import linking_views, views

app_name = "lti"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("launch/", views.launch_view, name="launch"),
    path("jwks/", views.jwks, name="jwks"),
    path("config/", views.tool_config, name="config"),
    path("register/", views.register, name="register"),
    path("register/<str:token>/", views.register, name="register-link"),
    path("lesson/<uuid:public_id>/", views.lesson, name="lesson"),
    path("handoff/", views.handoff_view, name="handoff"),
    path("deep-link/", views.deep_link, name="deep-link"),
    path("link/", linking_views.link, name="link"),
    path("unlink/<int:identity_id>/", linking_views.unlink, name="unlink"),
]
