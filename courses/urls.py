from __future__ import annotations

from django.urls import path

from courses import views

app_name = "courses"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("courses/<slug:slug>/", views.course_detail, name="course"),
    path("courses/<slug:slug>/enroll/", views.enroll, name="enroll"),
    path("lessons/<uuid:public_id>/", views.lesson_detail, name="lesson"),
    path("account/", views.account, name="account"),
]
