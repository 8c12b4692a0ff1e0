from __future__ import annotations

from django.urls import path

from playback import views

app_name = "playback"
urlpatterns = [
    path("<str:token>/<path:key>", views.stream, name="stream"),
]
