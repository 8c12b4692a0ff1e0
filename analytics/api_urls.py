from __future__ import annotations

from django.urls import path

from analytics import apis

urlpatterns = [
    path("qoe/events/", apis.QoeEventsApi.as_view(), name="api-qoe-events"),
]
