from __future__ import annotations

from django.urls import path

from playback import steering_views

app_name = "steer"
urlpatterns = [
    path("<str:token>/<path:key>", steering_views.steer, name="steer"),
]
