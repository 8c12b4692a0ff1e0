from django.apps import AppConfig


class PlaybackConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "playback"

    def ready(self) -> None:
        from courses.entitlement import entitlement_policy_register
        from playback.access import lesson_visible

        entitlement_policy_register(lesson_visible)
