"""Who signed in through the identity provider, and which groups it manages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class SsoIdentity(models.Model):
    """Links a Django user to one identity provider account: its issuer and `sub` claim.

    Users are found by this pair, never by e-mail or username: an account at the
    provider that shares an e-mail address with the bootstrap admin does not become it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SSO identity"
        verbose_name_plural = "SSO identities"
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="sso_identity_unique_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class ManagedGroup(models.Model):
    """A Django group that mirrors an identity provider group: a groups claim named it.

    Membership of these groups follows the claim at every sign-in. Groups no claim ever
    named (made by hand in the admin) are never touched by single sign-on.
    """

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, primary_key=True, related_name="sso_managed"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "SSO-managed group"

    def __str__(self) -> str:
        return self.group.name
