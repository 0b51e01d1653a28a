"""The OpenID Connect backend: mozilla-django-oidc, extended through its documented methods."""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts import services, sso
from accounts.discovery import DiscoveryError

logger = logging.getLogger(__name__)

# Where the callback view finds why a sign-in was refused (Django's authenticate()
# swallows the PermissionDenied that stops it).
REFUSAL_ATTRIBUTE = "sso_refusal"


def refuse(request: HttpRequest, reason: str) -> PermissionDenied:
    setattr(request, REFUSAL_ATTRIBUTE, reason)
    return PermissionDenied(reason)


class SsoBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Finds users by (issuer, sub), creates them on first sign-in, syncs their groups.

    On top of the library's checks (signature with the provider's published key, nonce,
    expiry) the ID token must name our issuer and our client as its audience.
    """

    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        return sso.read_setting(attr, *args)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        # Only the callback view passes a nonce: a password sign-in never reaches the
        # provider, even with ?code=&state= in its URL.
        if not sso.sso_enabled() or request is None or "nonce" not in kwargs:
            return None
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except (SuspiciousOperation, jwt.InvalidTokenError) as error:
            # Never the token itself: only what was wrong with it.
            logger.warning("SSO: refused the provider's answer: %s", error)
            raise refuse(request, "the identity provider's answer could not be verified") from error
        except requests.HTTPError as error:
            # The library's message carries the provider's error answer, never our secret.
            logger.warning("SSO: the provider refused the token request: %s", error)
            raise refuse(request, "the identity provider did not accept the sign-in") from error
        except (requests.RequestException, DiscoveryError) as error:
            logger.warning("SSO: the provider could not be reached: %s", type(error).__name__)
            raise refuse(request, "the identity provider could not be reached") from error
        return user

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if payload.get("iss") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("ID token from another issuer")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another audience")
        if len(audiences) > 1 and payload.get("azp") != settings.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token authorized for another party")
        # The library's decoder checks exp only when present; an ID token must have it.
        if not isinstance(payload.get("exp"), int) or not isinstance(payload.get("iat"), int):
            raise SuspiciousOperation("ID token without exp or iat")
        return payload

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        # Some providers put groups only in the ID token, others only in userinfo: use
        # both, the (verified) ID token's claims first, for the same subject only.
        userinfo: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo for another subject than the ID token")
        return {**payload, **userinfo}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub")) and services.groups_claim_is_valid(claims)

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        user = services.find_user(issuer=settings.OIDC_ISSUER, claims=claims)
        users: QuerySet[User] = self.UserModel.objects.filter(pk=user.pk if user else None)
        return users

    def create_user(self, claims: dict[str, Any]) -> User:
        return services.create_user(issuer=settings.OIDC_ISSUER, claims=claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        return services.update_user(user=user, claims=claims)

    def get_user(self, user_id: int) -> User | None:
        # The library's get_user keeps a deactivated account signed in; Django's does not.
        user: User | None = super().get_user(user_id)
        return user if user is not None and user.is_active else None
