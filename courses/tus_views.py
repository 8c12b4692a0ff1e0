"""Resumable video uploads over tus 1.0.0 (core, creation, termination, checksum, expiration).

    POST   /api/v1/uploads/            Upload-Length, Upload-Metadata: lesson <uuid>, filename <name>
    HEAD   /api/v1/uploads/<uuid>      -> Upload-Offset, Upload-Length
    PATCH  /api/v1/uploads/<uuid>      Upload-Offset, [Upload-Checksum], application/offset+octet-stream
    DELETE /api/v1/uploads/<uuid>
    OPTIONS either                     -> Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm

Only educators of the lesson's course (and superusers) may start an upload, and only its owner may
continue or cancel it. Session (with the CSRF header) or token authentication. Refusals carry a
plain-text reason in the body, which the admin widget shows. The views only parse headers and
call one service; the bytes' path is media_pipeline/uploads.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from courses import selectors, services
from media_pipeline import tus, uploads
from media_pipeline.models import ResumableUpload, UploadStatus


def _text(status: int, reason: str = "", **headers: str) -> HttpResponse:
    response = HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _options() -> HttpResponse:
    return _text(
        204,
        Tus_Version=tus.VERSION,
        Tus_Extension=",".join(tus.EXTENSIONS),
        Tus_Max_Size=str(settings.MAX_UPLOAD_BYTES),
        Tus_Checksum_Algorithm=",".join(tus.CHECKSUM_ALGORITHMS),
    )


def _expires(upload: ResumableUpload) -> dict[str, str]:
    return {"Upload_Expires": tus.http_date(upload.expires_at)} if upload.status == UploadStatus.ACTIVE else {}


class TusApi(APIView):
    schema = None  # not JSON; described in the README and docs/adr/0009

    def get_permissions(self) -> list[Any]:
        # OPTIONS is the unauthenticated capability probe of the protocol.
        return [] if self.request.method == "OPTIONS" else super().get_permissions()

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != tus.VERSION:
            response = _text(412, f"this server speaks tus {tus.VERSION}", Tus_Version=tus.VERSION)
            response["Tus-Resumable"] = tus.VERSION
            return response
        return super().dispatch(request, *args, **kwargs)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = tus.VERSION
        response["Cache-Control"] = "no-store"
        return response

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return _options()


class UploadCreateApi(TusApi):
    def post(self, request: Request) -> HttpResponse:
        try:
            if request.headers.get("Upload-Defer-Length"):
                raise tus.ProtocolError("Upload-Length is required (creation-defer-length is not supported)")
            length = tus.parse_non_negative("Upload-Length", request.headers.get("Upload-Length"))
            metadata = tus.parse_metadata(request.headers.get("Upload-Metadata", ""))
        except tus.ProtocolError as exc:
            return _text(400, str(exc))
        lesson = selectors.lesson_get(public_id=metadata.get("lesson", ""))
        if lesson is None or not selectors.user_may_upload(user=request.user, lesson=lesson):
            return _text(404, "no such lesson among the ones you teach")
        try:
            upload = services.lesson_upload_start(
                user=request.user, lesson=lesson, length=length, filename=metadata.get("filename", "")
            )
        except uploads.UploadError as exc:
            return _text(exc.status, str(exc))
        location = request.build_absolute_uri(f"/api/v1/uploads/{upload.public_id}")
        return _text(201, Location=location, Upload_Offset="0", **_expires(upload))


class UploadApi(TusApi):
    def _upload(self, request: Request, upload_id: uuid.UUID) -> ResumableUpload | None:
        return selectors.upload_get_for(user=request.user, public_id=upload_id)

    def head(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        upload = self._upload(request, upload_id)
        if upload is None:
            return _text(404)
        if upload.status in (UploadStatus.TERMINATED, UploadStatus.EXPIRED):
            return _text(410)
        offset = upload.offset if upload.status == UploadStatus.ACTIVE else upload.length
        return _text(200, Upload_Offset=str(offset), Upload_Length=str(upload.length), **_expires(upload))

    def patch(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        upload = self._upload(request, upload_id)
        if upload is None:
            return _text(404, "no such upload")
        if request._request.content_type != tus.OFFSET_CONTENT_TYPE:  # the media type, parameters aside
            return _text(415, f"a PATCH must be {tus.OFFSET_CONTENT_TYPE}")
        try:
            offset = tus.parse_non_negative("Upload-Offset", request.headers.get("Upload-Offset"))
            length = tus.parse_non_negative("Content-Length", request.headers.get("Content-Length"))
            header = request.headers.get("Upload-Checksum")
            checksum = tus.parse_checksum(header) if header else None
        except tus.ProtocolError as exc:
            return _text(400, str(exc))
        try:
            # The raw request stream, read as it arrives: DRF never parses this body.
            upload = uploads.upload_append(
                upload=upload, offset=offset, stream=request._request, length=length, checksum=checksum
            )
        except uploads.UploadError as exc:
            return _text(exc.status, str(exc))
        offset = upload.offset if upload.status == UploadStatus.ACTIVE else upload.length
        return _text(204, Upload_Offset=str(offset), **_expires(upload))

    def delete(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        upload = self._upload(request, upload_id)
        if upload is None:
            return _text(404, "no such upload")
        try:
            uploads.upload_terminate(upload=upload)
        except uploads.UploadError as exc:
            return _text(exc.status, str(exc))
        return _text(204)
