from __future__ import annotations

from django.urls import path

from lti import instructor_views, linking_views, upload_views, views

app_name = "lti"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("launch/", views.launch_view, name="launch"),
    path("jwks/", views.jwks, name="jwks"),
    path("config/", views.tool_config, name="config"),
    path("register/", views.register, name="register"),
    path("register/<str:token>/", views.register, name="register-link"),
    path("lesson/<uuid:public_id>/", views.lesson, name="lesson"),
    path("handoff/", views.handoff_view, name="handoff"),
    path("deep-link/", views.deep_link, name="deep-link"),
    path("instructor/<uuid:public_id>/", instructor_views.instructor_page, name="instructor"),
    path(
        "instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/details/",
        instructor_views.lesson_details,
        name="instructor-lesson-details",
    ),
    path(
        "instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/move/",
        instructor_views.lesson_move,
        name="instructor-lesson-move",
    ),
    path(
        "instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/captions/",
        instructor_views.lesson_captions,
        name="instructor-lesson-captions",
    ),
    path(
        "instructor/<uuid:public_id>/lessons/<uuid:lesson_id>/delete/",
        instructor_views.lesson_delete,
        name="instructor-lesson-delete",
    ),
    path(
        "instructor/<uuid:public_id>/scores/<int:score_id>/resend/",
        instructor_views.score_resend,
        name="instructor-score-resend",
    ),
    path("deep-link/upload/", upload_views.deep_link_upload, name="deep-link-upload"),
    path("deep-link/upload/done/", upload_views.deep_link_upload_done, name="deep-link-upload-done"),
    path("lesson/<uuid:public_id>/status/", upload_views.lesson_status, name="lesson-status"),
    path("link/", linking_views.link, name="link"),
    path("unlink/<int:identity_id>/", linking_views.unlink, name="unlink"),
]
