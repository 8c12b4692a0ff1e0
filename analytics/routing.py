from __future__ import annotations

from django.urls import path

from analytics.consumers import LiveDashboardConsumer

websocket_urlpatterns = [
    path("ws/analytics/live/", LiveDashboardConsumer.as_asgi()),
]
