"""LtiContext.public_id (the instructor page's URL names a context without its sequential id) and
LtiScore.refused_version (a score the platform refused waits for a re-send instead of a retry)."""

import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    LtiContext = apps.get_model("lti", "LtiContext")
    for context in LtiContext.objects.filter(public_id__isnull=True).only("pk"):
        LtiContext.objects.filter(pk=context.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("lti", "0003_instructor_workflow"),
    ]

    operations = [
        migrations.AddField(
            model_name="lticontext",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="lticontext",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
        migrations.AddField(
            model_name="ltiscore",
            name="refused_version",
            field=models.PositiveIntegerField(
                default=0,
                help_text="The platform refused this version (4xx): not sent again until the score changes or "
                "someone re-sends it (instructor page, admin).",
            ),
        ),
    ]
