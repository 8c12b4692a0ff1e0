from __future__ import annotations

from django.urls import path

from courses import apis

urlpatterns = [
    path("courses/", apis.CourseListApi.as_view(), name="api-course-list"),
    path("courses/<slug:slug>/", apis.CourseDetailApi.as_view(), name="api-course-detail"),
    path("lessons/<uuid:public_id>/", apis.LessonDetailApi.as_view(), name="api-lesson-detail"),
    path("lessons/<uuid:public_id>/replicas/", apis.LessonReplicasApi.as_view(), name="api-lesson-replicas"),
]
