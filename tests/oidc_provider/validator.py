from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.oidc_provider import GROUPS_CLAIM


class GroupsClaimValidator(OAuth2Validator):
    """Adds profile claims and the person's groups through the documented claim hooks."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, GROUPS_CLAIM: "groups"}

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.username,
            "email": user.email,
            "given_name": user.first_name,
            GROUPS_CLAIM: sorted(user.groups.values_list("name", flat=True)),
        }
