from __future__ import annotations

from django.urls import path

from playback import drm_views

app_name = "drm"
urlpatterns = [
    path("clearkey/license", drm_views.clearkey_license, name="clearkey-license"),
    path("hls/key/<str:kid>", drm_views.hls_key, name="hls-key"),
]
