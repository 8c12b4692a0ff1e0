"""Direct uploads of a lesson's video: the client sends the parts straight to S3 (docs/adr/0026).

    GET    /api/v1/uploads/direct/                       whether direct uploads are available here
    POST   /api/v1/uploads/direct/                       {lesson, filename, size} -> part size and count
    GET    /api/v1/uploads/direct/<uuid>/                the upload and the parts storage holds (resume)
    POST   /api/v1/uploads/direct/<uuid>/part-urls/      {parts: [{number, md5}]} -> presigned PUT URLs
    POST   /api/v1/uploads/direct/<uuid>/complete/       {parts: [{number, etag}]} -> processing starts
    DELETE /api/v1/uploads/direct/<uuid>/                cancel; storage drops the parts

Only educators of the lesson's course (and superusers) may start one, and only its owner may go on
with it or cancel it; anyone else's upload is a 404. Refusals are ``{"detail": reason}`` with the
status of their kind (config/api_errors.py). The views validate, call one service and serialise.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import NOT_LOGGED_IN, error
from courses import selectors, services
from courses.upload_grants import UploadGrantAuthentication, upload_grant_of
from media_pipeline import direct_uploads, uploads
from media_pipeline.models import ResumableUpload, UploadStatus


def _user(request: Request) -> User:
    user = request.user
    if isinstance(user, AnonymousUser):  # IsAuthenticated let no one else in; this tells the type checker
        raise NotAuthenticated()
    return user


class CapabilitiesOutput(serializers.Serializer):
    available = serializers.BooleanField(help_text="False: storage is not S3 (or it is off); upload over tus")
    max_size = serializers.IntegerField(help_text="The largest upload accepted, in bytes")
    part_size = serializers.IntegerField(help_text="The part size of an upload (larger for very large files)")

    class Meta:
        ref_name = "DirectCapabilitiesOutput"


class CreateInput(serializers.Serializer):
    lesson = serializers.UUIDField()
    filename = serializers.CharField(max_length=1000, allow_blank=True, default="")
    size = serializers.IntegerField(min_value=1, max_value=2**62)

    class Meta:
        ref_name = "DirectCreateInput"


class UploadOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    filename = serializers.CharField()
    size = serializers.IntegerField(source="length")
    part_size = serializers.IntegerField()
    part_count = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=UploadStatus.choices)
    expires_at = serializers.DateTimeField()

    def get_part_count(self, upload: ResumableUpload) -> int:
        return direct_uploads.part_count(upload)

    class Meta:
        ref_name = "DirectUploadOutput"


class StoredPartOutput(serializers.Serializer):
    number = serializers.IntegerField()
    size = serializers.IntegerField()
    etag = serializers.CharField()

    class Meta:
        ref_name = "DirectStoredPartOutput"


class UploadStateOutput(UploadOutput):
    parts = StoredPartOutput(many=True, help_text="Parts storage holds (while the upload is active)")

    class Meta:
        ref_name = "DirectUploadStateOutput"


class PartMd5Input(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, max_value=10_000)
    md5 = serializers.CharField(max_length=32, help_text="Base64 of the part's MD5 digest (as in Content-MD5)")

    class Meta:
        ref_name = "DirectPartMd5Input"


class PartUrlsInput(serializers.Serializer):
    parts = serializers.ListField(
        child=PartMd5Input(), allow_empty=False, max_length=direct_uploads.MAX_URLS_PER_REQUEST
    )

    class Meta:
        ref_name = "DirectPartUrlsInput"


class PartUrlOutput(serializers.Serializer):
    number = serializers.IntegerField()
    url = serializers.URLField(help_text="PUT the part's bytes here")
    headers = serializers.DictField(child=serializers.CharField(), help_text="Send these headers with the PUT")

    class Meta:
        ref_name = "DirectPartUrlOutput"


class PartUrlsOutput(serializers.Serializer):
    parts = PartUrlOutput(many=True)

    class Meta:
        ref_name = "DirectPartUrlsOutput"


class PartEtagInput(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, max_value=10_000)
    etag = serializers.CharField(max_length=200, help_text="The ETag storage answered the part's PUT with")

    class Meta:
        ref_name = "DirectPartEtagInput"


class CompleteInput(serializers.Serializer):
    parts = serializers.ListField(child=PartEtagInput(), allow_empty=False, max_length=10_000)

    class Meta:
        ref_name = "DirectCompleteInput"


_REFUSED = {403: error(NOT_LOGGED_IN), 404: error("No such upload of yours")}
# A field error names its field ({"parts": [...]}); a refusal of the service has "detail".
_INVALID = "Malformed input (field errors by field), or refused with a reason (detail)"
_NOT_JSON = {415: error("The body is not JSON")}


def _invalid(description: str = _INVALID) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.OBJECT, description=description)


def _upload_of(request: Request, upload_id: uuid.UUID) -> ResumableUpload:
    grant = upload_grant_of(request)
    upload = selectors.upload_get_for(user=_user(request), public_id=upload_id, direct=True, grant=grant)
    if upload is None:
        raise NotFound("no such upload of yours")
    return upload


class GrantOrUserApi(APIView):
    # An upload grant (an LMS picker's page, which may have no cookies) or the usual credentials.
    authentication_classes = [UploadGrantAuthentication, *APIView.authentication_classes]


class DirectUploadsApi(GrantOrUserApi):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="direct_uploads_capabilities",
        summary="Whether lesson videos may be uploaded straight to storage here",
        responses={200: CapabilitiesOutput, 403: error(NOT_LOGGED_IN)},
    )
    def get(self, request: Request) -> Response:
        available = direct_uploads.direct_available()
        answer = {"available": available, "max_size": settings.MAX_UPLOAD_BYTES}
        answer["part_size"] = settings.UPLOAD_DIRECT_PART_BYTES
        return Response(CapabilitiesOutput(answer).data, headers={"Cache-Control": "no-store"})

    @extend_schema(
        operation_id="direct_uploads_create",
        summary="Start a direct upload of a lesson's video (size and quota checked first)",
        request=CreateInput,
        responses={
            201: UploadOutput,
            400: _invalid(),
            **_NOT_JSON,
            403: error(NOT_LOGGED_IN),
            404: error("No such lesson among the ones you teach"),
            409: error("Direct uploads are not available here: upload over tus"),
            413: error("Larger than the upload limit, or over your storage quota"),
        },
    )
    def post(self, request: Request) -> Response:
        data = CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = _user(request)
        lesson = selectors.lesson_get(public_id=data.validated_data["lesson"])
        grant = upload_grant_of(request)
        if lesson is None or not selectors.user_may_upload(user=user, lesson=lesson, grant=grant):
            raise NotFound("no such lesson among the ones you teach")
        upload = services.lesson_upload_start(
            user=user,
            lesson=lesson,
            length=data.validated_data["size"],
            filename=data.validated_data["filename"],
            direct=True,
            quota=grant.quota if grant else None,
        )
        return Response(UploadOutput(upload).data, status=201, headers={"Cache-Control": "no-store"})


class DirectUploadApi(GrantOrUserApi):
    @extend_schema(
        operation_id="direct_upload_state",
        summary="A direct upload and the parts storage holds (to resume it)",
        responses={200: UploadStateOutput, **_REFUSED},
    )
    def get(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = _upload_of(request, upload_id)
        active = upload.status == UploadStatus.ACTIVE
        parts = direct_uploads.stored_parts(upload) if active else []
        answer = {**UploadOutput(upload).data, "parts": StoredPartOutput(parts, many=True).data}
        return Response(answer, headers={"Cache-Control": "no-store"})

    @extend_schema(
        operation_id="direct_upload_cancel",
        summary="Cancel a direct upload; storage drops its parts",
        request=None,
        responses={
            204: None,
            **_REFUSED,
            403: error("Not logged in, or the upload is already complete"),
            404: error("No such upload of yours, or it was already cancelled or has expired"),
        },
    )
    def delete(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = _upload_of(request, upload_id)
        uploads.upload_terminate(upload=upload)
        return Response(status=204)


class DirectUploadPartUrlsApi(GrantOrUserApi):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="direct_upload_part_urls",
        summary="Presigned URLs to PUT parts to, each with the part's MD5 signed in",
        request=PartUrlsInput,
        responses={
            200: PartUrlsOutput,
            400: _invalid("Malformed input, a part that does not exist, or a malformed MD5"),
            **_NOT_JSON,
            **_REFUSED,
            403: error("Not logged in, or the upload is already complete"),
            404: error("No such upload of yours, or it was cancelled or has expired"),
            409: error("Not a direct upload"),
        },
    )
    def post(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = _upload_of(request, upload_id)
        data = PartUrlsInput(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = [(part["number"], part["md5"]) for part in data.validated_data["parts"]]
        urls = direct_uploads.direct_part_urls(upload=upload, parts=wanted)
        return Response(PartUrlsOutput({"parts": urls}).data, headers={"Cache-Control": "no-store"})


class DirectUploadCompleteApi(GrantOrUserApi):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="direct_upload_complete",
        summary="Check the stored parts against this list and the size, then start processing (once)",
        request=CompleteInput,
        responses={
            200: UploadOutput,
            400: _invalid("Malformed input, or a part is missing, of the wrong size or not the one listed"),
            **_NOT_JSON,
            **_REFUSED,
            404: error("No such upload of yours, or it was cancelled or has expired"),
        },
    )
    def post(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = _upload_of(request, upload_id)
        data = CompleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        declared: list[tuple[int, str]] = [(part["number"], part["etag"]) for part in data.validated_data["parts"]]
        finished = direct_uploads.direct_upload_complete(upload=upload, parts=declared)
        return Response(UploadOutput(finished).data, headers={"Cache-Control": "no-store"})
