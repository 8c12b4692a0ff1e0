"""The moved models' content types change app (courses -> lti) and keep their ids, so the admin
permissions and admin log entries that point at them stay theirs."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

MODELS = (
    "lticontext",
    "ltideployment",
    "ltilaunchgrant",
    "ltiloginstate",
    "ltinonce",
    "ltiplatform",
    "ltiregistrationlink",
    "ltiresourcelink",
    "ltiscore",
    "ltitoolkey",
    "ltiuser",
)


def _relabel(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor, *, old: str, new: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects.db_manager(schema_editor.connection.alias)
    # A content type already made under the new label (post_migrate of an earlier run) keeps its place.
    taken = set(content_types.filter(app_label=new, model__in=MODELS).values_list("model", flat=True))
    content_types.filter(app_label=old, model__in=[m for m in MODELS if m not in taken]).update(app_label=new)
    content_types.clear_cache()


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, old="courses", new="lti")


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, old="lti", new="courses")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("courses", "0009_lti_models_move_to_lti"),
        ("lti", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
