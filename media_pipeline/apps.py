from django.apps import AppConfig


class MediaPipelineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "media_pipeline"
    verbose_name = "Media pipeline"

    def ready(self) -> None:
        # Registers the actors with the broker in every process (web too, not only `rundramatiq`):
        # the pipeline sends its steps by name (core.tasks), never by importing this module.
        from media_pipeline import actors  # noqa: F401
        from media_pipeline.metrics import register_collectors

        register_collectors()
