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
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api_errors import status_for
from config.openapi import NOT_LOGGED_IN, error
from courses import selectors, services
from courses.upload_grants import UploadGrantAuthentication, upload_grant_of
from media_pipeline import tus, uploads
from media_pipeline.models import ResumableUpload, UploadStatus

# The tus protocol's own statuses for three refusals; every other one has its kind's (config/api_errors).
TUS_STATUS_OF: dict[type[uploads.UploadError], int] = {
    uploads.UploadBusy: 423,  # Locked: another request is appending
    uploads.UploadGone: 410,  # Gone: terminated or expired
    uploads.ChecksumMismatch: 460,  # the checksum extension's "Checksum Mismatch"
}


def _refused(exc: uploads.UploadError) -> HttpResponse:
    return _text(TUS_STATUS_OF.get(type(exc)) or status_for(exc), str(exc))


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


# --- The protocol in the OpenAPI schema (docs/adr/0009 has the why) ---------------------------------
def _header(name: str, description: str, *, required: bool = False, integer: bool = False, **extra: Any) -> Any:
    return OpenApiParameter(
        name, {"type": "integer", "minimum": 0} if integer else OpenApiTypes.STR, OpenApiParameter.HEADER,
        required=required, description=description, **extra,
    )  # fmt: skip


def _text_refusal(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.STR, description=description)


TUS_RESUMABLE = _header("Tus-Resumable", "The protocol version", required=True, enum=[tus.VERSION])
# Every answer says which version the server speaks.
_ANSWERS_TUS = _header("Tus-Resumable", "The protocol version the server speaks", required=True, response=True)
_REFUSALS: dict[Any, Any] = {
    (403, "application/json"): error(NOT_LOGGED_IN),
    (412, "text/plain"): _text_refusal("Tus-Resumable is not 1.0.0"),
}
_EXPIRES = _header("Upload-Expires", "When an unfinished upload is discarded (HTTP date)", response=[201, 204, 200])


def _options_schema(operation_id: str, *parameters: OpenApiParameter) -> Any:
    return extend_schema(
        operation_id=operation_id,
        summary="tus capabilities (no authentication)",
        parameters=[*parameters] + [
            _header(name, description, required=True, response=[204])
            for name, description in (
                ("Tus-Version", "Protocol versions spoken"), ("Tus-Extension", "Extensions supported"),
                ("Tus-Max-Size", "Largest upload accepted, in bytes"),
                ("Tus-Checksum-Algorithm", "Algorithms Upload-Checksum may name"),
                ("Tus-Resumable", "The protocol version the server speaks"),
            )
        ],
        request=None,
        responses={204: OpenApiResponse(description="The capabilities, in the headers")},
    )  # fmt: skip


class TusApi(APIView):
    # HEAD carries the offset and OPTIONS the capabilities: both are part of the protocol.
    openapi_extra_methods = ("HEAD", "OPTIONS")
    # An upload grant (an LMS picker's page, which may have no cookies) or the usual credentials.
    authentication_classes = [UploadGrantAuthentication, *APIView.authentication_classes]

    def get_permissions(self) -> Sequence[Any]:
        # OPTIONS is the unauthenticated capability probe of the protocol.
        return [] if self.request.method == "OPTIONS" else super().get_permissions()

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # ... so credentials are not even read for it: a stale token must not turn the probe into a 403.
        drf_request = super().initialize_request(request, *args, **kwargs)
        if request.method == "OPTIONS":
            drf_request.authenticators = ()
        return drf_request

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


class UploadCreateApi(TusApi):
    @_options_schema("uploads_options")
    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return _options()

    @extend_schema(
        operation_id="uploads_create",
        summary="Start a resumable upload of a lesson's video (tus creation)",
        parameters=[
            TUS_RESUMABLE,
            _header("Upload-Length", "Size of the whole file in bytes", required=True, integer=True),
            _header("Upload-Metadata", "lesson <base64 uuid>,filename <base64 name>: comma-separated pairs"),
            _header("Location", "The new upload's URL", required=True, response=[201]),
            _header("Upload-Offset", "0", required=True, response=[201], integer=True),
            _EXPIRES,
            _ANSWERS_TUS,
        ],
        request=None,
        responses={
            201: OpenApiResponse(description="Created; send the bytes to Location"),
            (400, "text/plain"): _text_refusal("A malformed Upload-Length or Upload-Metadata, or a bad file name"),
            **_REFUSALS,
            (404, "text/plain"): _text_refusal("No such lesson among the ones you teach"),
            (413, "text/plain"): _text_refusal("Larger than Tus-Max-Size, or over your storage quota"),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        try:
            if request.headers.get("Upload-Defer-Length"):
                raise tus.ProtocolError("Upload-Length is required (creation-defer-length is not supported)")
            length = tus.parse_non_negative("Upload-Length", request.headers.get("Upload-Length"))
            metadata = tus.parse_metadata(request.headers.get("Upload-Metadata", ""))
        except tus.ProtocolError as exc:
            return _text(400, str(exc))
        user = request.user
        if isinstance(user, AnonymousUser):  # IsAuthenticated let no one else in; this tells the type checker
            raise NotAuthenticated()
        lesson = selectors.lesson_get(public_id=metadata.get("lesson", ""))
        grant = upload_grant_of(request)
        if lesson is None or not selectors.user_may_upload(user=user, lesson=lesson, grant=grant):
            return _text(404, "no such lesson among the ones you teach")
        try:
            upload = services.lesson_upload_start(
                user=user,
                lesson=lesson,
                length=length,
                filename=metadata.get("filename", ""),
                quota=grant.quota if grant else None,
            )
        except uploads.UploadError as exc:
            return _refused(exc)
        location = request.build_absolute_uri(f"/api/v1/uploads/{upload.public_id}")
        return _text(201, Location=location, Upload_Offset="0", **_expires(upload))


_UPLOAD_ID = OpenApiParameter("upload_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class UploadApi(TusApi):
    @_options_schema("upload_options", _UPLOAD_ID)
    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return _options()

    def _upload(self, request: Request, upload_id: uuid.UUID) -> ResumableUpload | None:
        grant = upload_grant_of(request)
        return selectors.upload_get_for(user=request.user, public_id=upload_id, direct=False, grant=grant)

    @extend_schema(
        operation_id="upload_offset",
        summary="How much of an upload the server has (tus HEAD)",
        parameters=[
            _UPLOAD_ID,
            TUS_RESUMABLE,
            _header("Upload-Offset", "Bytes received", required=True, response=[200], integer=True),
            _header("Upload-Length", "Size of the whole file", required=True, response=[200], integer=True),
            _EXPIRES,
            _ANSWERS_TUS,
        ],
        request=None,
        responses={
            200: OpenApiResponse(description="The offset, in the headers"),
            **_REFUSALS,
            (404, "text/plain"): _text_refusal("No such upload of yours"),
            (410, "text/plain"): _text_refusal("Cancelled or expired"),
        },
    )
    def head(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        upload = self._upload(request, upload_id)
        if upload is None:
            return _text(404)
        if upload.status in (UploadStatus.TERMINATED, UploadStatus.EXPIRED):
            return _text(410)
        offset = upload.offset if upload.status == UploadStatus.ACTIVE else upload.length
        return _text(200, Upload_Offset=str(offset), Upload_Length=str(upload.length), **_expires(upload))

    @extend_schema(
        operation_id="upload_append",
        summary="Append bytes at the server's offset (tus PATCH)",
        parameters=[
            _UPLOAD_ID,
            TUS_RESUMABLE,
            _header("Upload-Offset", "Where these bytes start: the server's offset", required=True, integer=True),
            _header("Upload-Checksum", "<algorithm> <base64 digest> of this request's bytes (sha1, sha256, md5)"),
            _header("Upload-Offset", "Bytes received", required=True, response=[204], integer=True),
            _EXPIRES,
            _ANSWERS_TUS,
        ],
        request={tus.OFFSET_CONTENT_TYPE: OpenApiTypes.BINARY},
        responses={
            204: OpenApiResponse(description="Stored; the new offset is in Upload-Offset"),
            (400, "text/plain"): _text_refusal("A malformed header, or more bytes than the upload's length"),
            (403, "application/json"): error(NOT_LOGGED_IN),
            (403, "text/plain"): _text_refusal("The upload is already complete"),
            (404, "text/plain"): _text_refusal("No such upload of yours"),
            (409, "text/plain"): _text_refusal("Upload-Offset is not the server's offset"),
            (410, "text/plain"): _text_refusal("Cancelled or expired"),
            (412, "text/plain"): _text_refusal("Tus-Resumable is not 1.0.0"),
            (413, "text/plain"): _text_refusal("Larger than the upload's length or the chunk limit"),
            (415, "text/plain"): _text_refusal("Not application/offset+octet-stream"),
            (423, "text/plain"): _text_refusal("Another request is appending to this upload"),
            (460, "text/plain"): _text_refusal("Upload-Checksum does not match the bytes; they were discarded"),
        },
    )  # fmt: skip
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
            body = request._request
            upload = uploads.upload_append(upload=upload, offset=offset, stream=body, length=length, checksum=checksum)
        except uploads.UploadError as exc:
            return _refused(exc)
        offset = upload.offset if upload.status == UploadStatus.ACTIVE else upload.length
        return _text(204, Upload_Offset=str(offset), **_expires(upload))

    @extend_schema(
        operation_id="upload_cancel",
        summary="Cancel an upload and discard its bytes (tus termination)",
        parameters=[_UPLOAD_ID, TUS_RESUMABLE, _ANSWERS_TUS],
        request=None,
        responses={
            204: OpenApiResponse(description="Cancelled"),
            **_REFUSALS,
            (403, "text/plain"): _text_refusal("The upload is already complete"),
            (404, "text/plain"): _text_refusal("No such upload of yours"),
            (410, "text/plain"): _text_refusal("Already cancelled or expired"),
            (423, "text/plain"): _text_refusal("Another request is appending to this upload"),
        },
    )
    def delete(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        upload = self._upload(request, upload_id)
        if upload is None:
            return _text(404, "no such upload")
        try:
            uploads.upload_terminate(upload=upload)
        except uploads.UploadError as exc:
            return _refused(exc)
        return _text(204)
