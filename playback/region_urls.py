from __future__ import annotations

from django.urls import path

from playback import views

app_name = "playback_region"
urlpatterns = [
    path("<str:region>/<str:token>/<path:key>", views.region_stream, name="stream"),
]
