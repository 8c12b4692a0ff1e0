"""LTI 1.3 records: registered platforms, our signing keys, and what launches link to what.

Fields and constraints only; the workflows are in the service modules beside it (launch, ags, nrps, ...).
The tables keep the names they had when these models lived in courses (docs/adr/0022).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class LtiPlatform(models.Model):
    """An LMS registration: one issuer and the client id it gave us."""

    name = models.CharField(max_length=200, blank=True)
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    auth_login_url = models.URLField(max_length=500, help_text="The platform's OIDC authorization endpoint.")
    auth_token_url = models.URLField(max_length=500, help_text="The platform's OAuth 2 token endpoint.")
    auth_token_audience = models.CharField(
        max_length=500, blank=True, help_text="Audience of our client assertion, when not the token URL."
    )
    jwks_url = models.URLField(max_length=500)
    frame_origins = models.TextField(
        blank=True,
        help_text="More origins (one a line, e.g. https://lms.example.edu) allowed to frame the tool. "
        "The issuer's and the login URL's origins always are.",
    )
    active = models.BooleanField(default=True)
    teaching_assistants_instruct = models.BooleanField(
        default=False,
        help_text="Teaching Assistants of a context count as its instructors (they pick lessons and see the "
        "instructor page). Instructors and Administrators always do.",
    )
    link_accounts_by_email = models.BooleanField(
        default=False,
        help_text="A launch whose verified email matches exactly one account on this site lands in that "
        "account. Risk: anyone who can set an email on this platform can then enter the site account "
        "holding that email, staff included. Turn on only when the platform verifies every email it sends "
        "and no user can change their own. Only a superuser can change this.",
    )
    lms_upload_enabled = models.BooleanField(
        default=False,
        help_text="Instructors of this platform may upload new videos from the lesson picker.",
    )
    lms_upload_quota_bytes = models.BigIntegerField(
        default=5 * 1024**3,
        help_text="Bytes of uploaded originals each instructor of this platform may keep from picker uploads.",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "courses_ltiplatform"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_unique_issuer_client"),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.issuer} ({self.client_id})"


class LtiRegistrationLink(models.Model):
    """A one-time, expiring Dynamic Registration URL a superuser made for one LMS administrator.

    Only the SHA-256 of the link's secret is stored: the URL is shown once, when it is made."""

    token_hash = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=200, blank=True, help_text="Whom the link is for, e.g. the LMS's name.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    platform = models.ForeignKey(
        LtiPlatform, on_delete=models.SET_NULL, null=True, blank=True, related_name="registration_links"
    )

    class Meta:
        db_table = "courses_ltiregistrationlink"

    def __str__(self) -> str:
        return self.label or f"registration link of {self.created_at:%Y-%m-%d %H:%M}"


class LtiDeployment(models.Model):
    platform = models.ForeignKey(LtiPlatform, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "courses_ltideployment"
        constraints = [
            models.UniqueConstraint(fields=["platform", "deployment_id"], name="lti_deployment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.platform} / {self.deployment_id}"


class LtiToolKey(models.Model):
    """Our RSA signing key. The private key is stored encrypted (PKCS#8, LTI_KEY_PASSPHRASE), never in git.

    One key is active; retired keys stay published in /lti/jwks/ until every token they signed has expired.
    """

    kid = models.CharField(max_length=64, unique=True)
    public_jwk = models.JSONField()
    private_key_encrypted = models.TextField()
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "courses_ltitoolkey"
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=models.Q(active=True), name="lti_one_active_key"),
        ]

    def __str__(self) -> str:
        return self.kid


class LtiUser(models.Model):
    """The stable link between a platform user (issuer + sub) and our user."""

    issuer = models.CharField(max_length=500)
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities")
    created_at = models.DateTimeField(auto_now_add=True)
    linked_at = models.DateTimeField(
        null=True, blank=True, help_text="When this identity was linked to an existing account of this site."
    )
    link_method = models.CharField(
        max_length=16, blank=True, help_text="How it was linked: password, session or email (empty if not linked)."
    )

    class Meta:
        db_table = "courses_ltiuser"
        constraints = [models.UniqueConstraint(fields=["issuer", "sub"], name="lti_user_unique_issuer_sub")]

    def __str__(self) -> str:
        return f"{self.sub} at {self.issuer}"


class LtiContext(models.Model):
    """An LMS course (context id is unique within a deployment), linked to one of our courses."""

    deployment = models.ForeignKey(LtiDeployment, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    # Names the context in the instructor page's URL: not guessable, not counting the contexts.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True)
    course = models.ForeignKey(
        "courses.Course", on_delete=models.SET_NULL, null=True, blank=True, related_name="lti_contexts"
    )
    memberships_url = models.URLField(max_length=500, blank=True)
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "courses_lticontext"
        constraints = [models.UniqueConstraint(fields=["deployment", "context_id"], name="lti_context_unique")]

    def __str__(self) -> str:
        return self.title or self.context_id


class LtiEducatorGrant(models.Model):
    """An educator membership of the context's course that LTI gave (a launch or the roster), not the site.

    Only these are taken back when the LMS stops calling the user an instructor (lti/educators.py); an
    educator of the course without one (added in the admin, or a linked account that already taught it)
    is left alone."""

    context = models.ForeignKey(LtiContext, on_delete=models.CASCADE, related_name="educator_grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_educator_grants")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["context", "user"], name="lti_educator_grant_unique")]

    def __str__(self) -> str:
        return f"{self.user} instructs {self.context} (from LTI)"


class LtiCourseShare(models.Model):
    """A course whose published lessons every instructor of one platform may pick (the shared library)."""

    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="lti_shares")
    platform = models.ForeignKey(LtiPlatform, on_delete=models.CASCADE, related_name="course_shares")
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "platform"], name="lti_course_share_unique")]

    def __str__(self) -> str:
        return f"{self.course} shared with {self.platform}"


class LtiResourceLink(models.Model):
    """A placement of the tool in an LMS course, linked to one lesson; with its gradebook column (AGS)."""

    deployment = models.ForeignKey(LtiDeployment, on_delete=models.CASCADE, related_name="resource_links")
    resource_link_id = models.CharField(max_length=255)
    context = models.ForeignKey(
        LtiContext, on_delete=models.SET_NULL, null=True, blank=True, related_name="resource_links"
    )
    lesson = models.ForeignKey(
        "courses.Lesson", on_delete=models.SET_NULL, null=True, blank=True, related_name="lti_links"
    )
    title = models.CharField(max_length=255, blank=True)
    lineitem_url = models.URLField(max_length=500, blank=True)
    lineitems_url = models.URLField(
        max_length=500, blank=True, help_text="The context's line items service, where the column is found or made."
    )
    ags_scopes = models.JSONField(default=list, blank=True)
    grades_blocked_reason = models.CharField(
        max_length=300, blank=True, help_text="Why scores cannot reach this link's gradebook, when they cannot."
    )
    score_maximum = models.FloatField(default=100)
    score_maximum_read_from = models.URLField(
        max_length=500,
        blank=True,
        help_text="The line item whose own scoreMaximum was read (or tried) into score_maximum: read once per column.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "courses_ltiresourcelink"
        constraints = [
            models.UniqueConstraint(fields=["deployment", "resource_link_id"], name="lti_resource_link_unique"),
        ]

    def __str__(self) -> str:
        return self.title or self.resource_link_id


class LtiLaunchGrant(models.Model):
    """This user launched this resource link: an entitlement to watch its lesson (playback/access.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_grants")
    lti_user = models.ForeignKey(LtiUser, on_delete=models.CASCADE, related_name="grants")
    resource_link = models.ForeignKey(LtiResourceLink, on_delete=models.CASCADE, related_name="grants")
    learner = models.BooleanField(default=True)
    last_launch_at = models.DateTimeField()

    class Meta:
        db_table = "courses_ltilaunchgrant"
        constraints = [
            models.UniqueConstraint(fields=["lti_user", "resource_link"], name="lti_grant_unique"),
        ]


class ActivityProgress(models.TextChoices):
    INITIALIZED = "Initialized"
    STARTED = "Started"
    IN_PROGRESS = "InProgress"
    SUBMITTED = "Submitted"
    COMPLETED = "Completed"


class GradingProgress(models.TextChoices):
    FULLY_GRADED = "FullyGraded"
    PENDING = "Pending"
    PENDING_MANUAL = "PendingManual"
    FAILED = "Failed"
    NOT_READY = "NotReady"


class LtiScore(models.Model):
    """The score a user should have in a resource link's line item, and the last one the platform got.

    `version` grows when the wanted score changes; a worker claims a version with a compare-and-set on
    `claimed_version`, posts it, and records `posted_version`. A version is never posted twice.
    """

    resource_link = models.ForeignKey(LtiResourceLink, on_delete=models.CASCADE, related_name="scores")
    lti_user = models.ForeignKey(LtiUser, on_delete=models.CASCADE, related_name="scores")
    score_given = models.FloatField(default=0)
    score_maximum = models.FloatField(default=100)
    activity_progress = models.CharField(max_length=16, choices=ActivityProgress.choices)
    grading_progress = models.CharField(max_length=16, choices=GradingProgress.choices)
    scored_at = models.DateTimeField(null=True, blank=True, help_text="When the wanted score last changed.")
    version = models.PositiveIntegerField(default=0)
    claimed_version = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    posted_version = models.PositiveIntegerField(default=0)
    posted_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    refused_version = models.PositiveIntegerField(
        default=0,
        help_text="The platform refused this version (4xx): not sent again until the score changes or someone "
        "re-sends it (instructor page, admin).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "courses_ltiscore"
        constraints = [models.UniqueConstraint(fields=["resource_link", "lti_user"], name="lti_score_unique")]


class LtiNonce(models.Model):
    """Nonces of id_tokens already used: the unique constraint makes each one single-use."""

    issuer = models.CharField(max_length=500)
    value = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "courses_ltinonce"
        constraints = [models.UniqueConstraint(fields=["issuer", "value"], name="lti_nonce_unique")]
        indexes = [models.Index(fields=["expires_at"], name="lti_nonce_expiry")]


class LtiLoginState(models.Model):
    """The state and nonce of one OIDC login, kept server-side so a launch can be checked without cookies."""

    state = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    platform = models.ForeignKey(LtiPlatform, on_delete=models.CASCADE, related_name="+")
    target_link_uri = models.URLField(max_length=500)
    storage_target = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "courses_ltiloginstate"
