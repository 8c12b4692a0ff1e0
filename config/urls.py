from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("courses.api_urls")),
    path("api/v1/", include("playback.api_urls")),
    path("api/v1/", include("analytics.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("stream/", include("playback.urls")),
    path("region-stream/", include("playback.region_urls")),
    path("steer/", include("playback.steer_urls")),
    path("drm/", include("playback.drm_urls")),
    path("edge-origin/", include("playback.edge_urls")),
    path("analytics/", include("analytics.urls")),
    path("lti/", include("lti.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("", include("courses.urls")),
]
