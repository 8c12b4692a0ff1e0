from django.apps import AppConfig


class MediaPipelineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "media_pipeline"
    verbose_name = "Media pipeline"

    def ready(self) -> None:
        # Every process declares the actors, so a service can send work by actor name
        # (core.tasks.send_on_commit); django_dramatiq loads them only in `rundramatiq`.
        from media_pipeline import actors  # noqa: F401
        from media_pipeline.metrics import register_collectors

        register_collectors()
