from __future__ import annotations

from django.urls import path

from courses import apis, direct_upload_apis, tus_views

urlpatterns = [
    path("courses/", apis.CourseListApi.as_view(), name="api-course-list"),
    path("courses/<slug:slug>/", apis.CourseDetailApi.as_view(), name="api-course-detail"),
    path("lessons/<uuid:public_id>/", apis.LessonDetailApi.as_view(), name="api-lesson-detail"),
    path("lessons/<uuid:public_id>/replicas/", apis.LessonReplicasApi.as_view(), name="api-lesson-replicas"),
    # tus resumable uploads (courses/tus_views.py); upload URLs have no trailing slash, as tus clients expect.
    path("uploads/", tus_views.UploadCreateApi.as_view(), name="api-upload-create"),
    path("uploads/<uuid:upload_id>", tus_views.UploadApi.as_view(), name="api-upload"),
    # Direct uploads to S3 with presigned part URLs (courses/direct_upload_apis.py, docs/adr/0026).
    path("uploads/direct/", direct_upload_apis.DirectUploadsApi.as_view(), name="api-direct-uploads"),
    path("uploads/direct/<uuid:upload_id>/", direct_upload_apis.DirectUploadApi.as_view(), name="api-direct-upload"),
    path(
        "uploads/direct/<uuid:upload_id>/part-urls/",
        direct_upload_apis.DirectUploadPartUrlsApi.as_view(),
        name="api-direct-upload-part-urls",
    ),
    path(
        "uploads/direct/<uuid:upload_id>/complete/",
        direct_upload_apis.DirectUploadCompleteApi.as_view(),
        name="api-direct-upload-complete",
    ),
]
