from __future__ import annotations

from django.urls import path

from playback import apis

urlpatterns = [
    path("lessons/<uuid:public_id>/playback/", apis.PlaybackApi.as_view(), name="api-lesson-playback"),
    path("lessons/<uuid:public_id>/progress/", apis.ProgressApi.as_view(), name="api-lesson-progress"),
]
