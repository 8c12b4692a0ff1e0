"""The LTI models, moved from courses: created in the migration state only.

Their tables exist already (courses 0002, 0004, 0007 made them, as courses_lti*) and keep their names
and rows (db_table); courses 0009 then removes the models from courses' state. docs/adr/0022.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('courses', '0008_lesson_progress_credit_clock'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # State only: the tables are already there.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='LtiDeployment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('deployment_id', models.CharField(max_length=255)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'courses_ltideployment',
                    },
                ),
                migrations.CreateModel(
                    name='LtiContext',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('context_id', models.CharField(max_length=255)),
                        ('title', models.CharField(blank=True, max_length=255)),
                        ('label', models.CharField(blank=True, max_length=255)),
                        ('memberships_url', models.URLField(blank=True, max_length=500)),
                        ('roster_synced_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('course', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='lti_contexts', to='courses.course')),
                        ('deployment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='contexts', to='lti.ltideployment')),
                    ],
                    options={
                        'db_table': 'courses_lticontext',
                    },
                ),
                migrations.CreateModel(
                    name='LtiNonce',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('issuer', models.CharField(max_length=500)),
                        ('value', models.CharField(max_length=255)),
                        ('expires_at', models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'courses_ltinonce',
                        'indexes': [models.Index(fields=['expires_at'], name='lti_nonce_expiry')],
                        'constraints': [models.UniqueConstraint(fields=('issuer', 'value'), name='lti_nonce_unique')],
                    },
                ),
                migrations.CreateModel(
                    name='LtiPlatform',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(blank=True, max_length=200)),
                        ('issuer', models.URLField(max_length=500)),
                        ('client_id', models.CharField(max_length=255)),
                        ('auth_login_url', models.URLField(help_text="The platform's OIDC authorization endpoint.", max_length=500)),
                        ('auth_token_url', models.URLField(help_text="The platform's OAuth 2 token endpoint.", max_length=500)),
                        ('auth_token_audience', models.CharField(blank=True, help_text='Audience of our client assertion, when not the token URL.', max_length=500)),
                        ('jwks_url', models.URLField(max_length=500)),
                        ('frame_origins', models.TextField(blank=True, help_text="More origins (one a line, e.g. https://lms.example.edu) allowed to frame the tool. The issuer's and the login URL's origins always are.")),
                        ('active', models.BooleanField(default=True)),
                        ('approved_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('approved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'courses_ltiplatform',
                    },
                ),
                migrations.CreateModel(
                    name='LtiLoginState',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('state', models.CharField(max_length=64, unique=True)),
                        ('nonce', models.CharField(max_length=64)),
                        ('target_link_uri', models.URLField(max_length=500)),
                        ('storage_target', models.CharField(blank=True, max_length=100)),
                        ('expires_at', models.DateTimeField()),
                        ('used_at', models.DateTimeField(blank=True, null=True)),
                        ('platform', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='lti.ltiplatform')),
                    ],
                    options={
                        'db_table': 'courses_ltiloginstate',
                    },
                ),
                migrations.AddField(
                    model_name='ltideployment',
                    name='platform',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deployments', to='lti.ltiplatform'),
                ),
                migrations.CreateModel(
                    name='LtiRegistrationLink',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('token_hash', models.CharField(max_length=64, unique=True)),
                        ('label', models.CharField(blank=True, help_text="Whom the link is for, e.g. the LMS's name.", max_length=200)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('expires_at', models.DateTimeField()),
                        ('used_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('platform', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='registration_links', to='lti.ltiplatform')),
                    ],
                    options={
                        'db_table': 'courses_ltiregistrationlink',
                    },
                ),
                migrations.CreateModel(
                    name='LtiResourceLink',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('resource_link_id', models.CharField(max_length=255)),
                        ('title', models.CharField(blank=True, max_length=255)),
                        ('lineitem_url', models.URLField(blank=True, max_length=500)),
                        ('lineitems_url', models.URLField(blank=True, help_text="The context's line items service, where the column is found or made.", max_length=500)),
                        ('ags_scopes', models.JSONField(blank=True, default=list)),
                        ('grades_blocked_reason', models.CharField(blank=True, help_text="Why scores cannot reach this link's gradebook, when they cannot.", max_length=300)),
                        ('score_maximum', models.FloatField(default=100)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('context', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='resource_links', to='lti.lticontext')),
                        ('deployment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='resource_links', to='lti.ltideployment')),
                        ('lesson', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='lti_links', to='courses.lesson')),
                    ],
                    options={
                        'db_table': 'courses_ltiresourcelink',
                    },
                ),
                migrations.CreateModel(
                    name='LtiToolKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kid', models.CharField(max_length=64, unique=True)),
                        ('public_jwk', models.JSONField()),
                        ('private_key_encrypted', models.TextField()),
                        ('active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('retired_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'db_table': 'courses_ltitoolkey',
                        'constraints': [models.UniqueConstraint(condition=models.Q(('active', True)), fields=('active',), name='lti_one_active_key')],
                    },
                ),
                migrations.CreateModel(
                    name='LtiUser',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('issuer', models.CharField(max_length=500)),
                        ('sub', models.CharField(max_length=255)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lti_identities', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'courses_ltiuser',
                    },
                ),
                migrations.CreateModel(
                    name='LtiScore',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('score_given', models.FloatField(default=0)),
                        ('score_maximum', models.FloatField(default=100)),
                        ('activity_progress', models.CharField(choices=[('Initialized', 'Initialized'), ('Started', 'Started'), ('InProgress', 'In Progress'), ('Submitted', 'Submitted'), ('Completed', 'Completed')], max_length=16)),
                        ('grading_progress', models.CharField(choices=[('FullyGraded', 'Fully Graded'), ('Pending', 'Pending'), ('PendingManual', 'Pending Manual'), ('Failed', 'Failed'), ('NotReady', 'Not Ready')], max_length=16)),
                        ('scored_at', models.DateTimeField(blank=True, help_text='When the wanted score last changed.', null=True)),
                        ('version', models.PositiveIntegerField(default=0)),
                        ('claimed_version', models.PositiveIntegerField(default=0)),
                        ('claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('posted_version', models.PositiveIntegerField(default=0)),
                        ('posted_at', models.DateTimeField(blank=True, null=True)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('last_error', models.TextField(blank=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('resource_link', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scores', to='lti.ltiresourcelink')),
                        ('lti_user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scores', to='lti.ltiuser')),
                    ],
                    options={
                        'db_table': 'courses_ltiscore',
                    },
                ),
                migrations.CreateModel(
                    name='LtiLaunchGrant',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('learner', models.BooleanField(default=True)),
                        ('last_launch_at', models.DateTimeField()),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lti_grants', to=settings.AUTH_USER_MODEL)),
                        ('resource_link', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='grants', to='lti.ltiresourcelink')),
                        ('lti_user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='grants', to='lti.ltiuser')),
                    ],
                    options={
                        'db_table': 'courses_ltilaunchgrant',
                    },
                ),
                migrations.AddConstraint(
                    model_name='lticontext',
                    constraint=models.UniqueConstraint(fields=('deployment', 'context_id'), name='lti_context_unique'),
                ),
                migrations.AddConstraint(
                    model_name='ltiplatform',
                    constraint=models.UniqueConstraint(fields=('issuer', 'client_id'), name='lti_platform_unique_issuer_client'),
                ),
                migrations.AddConstraint(
                    model_name='ltideployment',
                    constraint=models.UniqueConstraint(fields=('platform', 'deployment_id'), name='lti_deployment_unique'),
                ),
                migrations.AddConstraint(
                    model_name='ltiresourcelink',
                    constraint=models.UniqueConstraint(fields=('deployment', 'resource_link_id'), name='lti_resource_link_unique'),
                ),
                migrations.AddConstraint(
                    model_name='ltiuser',
                    constraint=models.UniqueConstraint(fields=('issuer', 'sub'), name='lti_user_unique_issuer_sub'),
                ),
                migrations.AddConstraint(
                    model_name='ltiscore',
                    constraint=models.UniqueConstraint(fields=('resource_link', 'lti_user'), name='lti_score_unique'),
                ),
                migrations.AddConstraint(
                    model_name='ltilaunchgrant',
                    constraint=models.UniqueConstraint(fields=('lti_user', 'resource_link'), name='lti_grant_unique'),
                ),
            ],
        ),
    ]
