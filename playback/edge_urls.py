from __future__ import annotations

from django.urls import path

from playback import views

app_name = "edge"
urlpatterns = [
    path("<path:key>", views.edge_fetch, name="fetch"),
]
