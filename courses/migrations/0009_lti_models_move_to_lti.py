"""The LTI models moved to the lti app (lti 0001): removed from courses' migration state only.

Their tables (courses_lti*) and rows stay where they are; the lti models name them with db_table.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0008_lesson_progress_credit_clock"),
        ("lti", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # Those that point at others first.
            state_operations=[
                migrations.DeleteModel(name=name)
                for name in (
                    "LtiScore",
                    "LtiLaunchGrant",
                    "LtiResourceLink",
                    "LtiContext",
                    "LtiLoginState",
                    "LtiRegistrationLink",
                    "LtiDeployment",
                    "LtiPlatform",
                    "LtiUser",
                    "LtiToolKey",
                    "LtiNonce",
                )
            ],
        ),
    ]
