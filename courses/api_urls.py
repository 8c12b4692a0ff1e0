from __future__ import annotations

from django.urls import path

from courses import apis, tus_views

urlpatterns = [
    path("courses/", apis.CourseListApi.as_view(), name="api-course-list"),
    path("courses/<slug:slug>/", apis.CourseDetailApi.as_view(), name="api-course-detail"),
    path("lessons/<uuid:public_id>/", apis.LessonDetailApi.as_view(), name="api-lesson-detail"),
    path("lessons/<uuid:public_id>/replicas/", apis.LessonReplicasApi.as_view(), name="api-lesson-replicas"),
    # tus resumable uploads (courses/tus_views.py); upload URLs have no trailing slash, as tus clients expect.
    path("uploads/", tus_views.UploadCreateApi.as_view(), name="api-upload-create"),
    path("uploads/<uuid:upload_id>", tus_views.UploadApi.as_view(), name="api-upload"),
]
