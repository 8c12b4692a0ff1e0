from django.apps import AppConfig


class MediaPipelineConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "media_pipeline"
    verbose_name = "Media pipeline"

    def ready(self) -> None:
        from media_pipeline.metrics import register_collectors

        register_collectors()
