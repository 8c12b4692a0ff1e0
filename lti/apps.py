"""LTI 1.3 Advantage tool app. Its tables kept their courses_lti* names when it left courses (docs/adr/0022)."""

from __future__ import annotations

from django.apps import AppConfig


class LtiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "lti"
    label = "lti"
    verbose_name = "LTI"

    def ready(self) -> None:
        # Only rundramatiq discovers actors modules: importing ours registers them with the broker in
        # every process, so core.tasks.send_on_commit finds them by name in the web process too.
        # courses never imports lti: it calls what lti registers in courses/hooks.py.
        from courses import hooks, upload_grants
        from lti import account, actors, ags, lms_uploads, selectors  # noqa: F401  (actors: see above)

        hooks.progress_recorded_listen(ags.scores_update)
        hooks.account_section_register(account.account_section)
        hooks.lesson_launch_source_register(sql=selectors.launched_lesson_sql, check=selectors.user_launched_lesson)
        upload_grants.upload_grant_resolver_register(lms_uploads.lms_upload_grant_quota)
