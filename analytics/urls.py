from __future__ import annotations

from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("live/", views.live_dashboard, name="live"),
    path("lessons/<uuid:public_id>/engagement.json", views.lesson_engagement_json, name="lesson-engagement"),
    path("report.json", views.report_json, name="report"),
]
