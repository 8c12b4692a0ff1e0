from __future__ import annotations

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.apis import RawParser
from config.urls import urlpatterns as app_urlpatterns


class NoopApi(APIView):
    """The same framework path as the ingest API (DRF, raw body read), doing nothing with it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [RawParser]

    def post(self, request: Request) -> Response:
        return Response({"accepted": len(request.body) > 0}, status=202)


class WhoAmIApi(APIView):
    """A trivial authenticated DRF endpoint (the project's default authentication and permission):
    the baseline for the playback-session benchmark."""

    def post(self, request: Request) -> Response:
        return Response({"user": request.user.pk})


urlpatterns = [
    path("bench/noop/", NoopApi.as_view()),
    path("bench/whoami/", WhoAmIApi.as_view()),
    *app_urlpatterns,
]
