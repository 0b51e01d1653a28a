"""Sign-in, single sign-on and sign-out."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, resolve_url
from django.views.decorators.http import require_GET, require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts import discovery, sso
from accounts.backends import REFUSAL_ATTRIBUTE
from accounts.forms import PasswordSignInForm

SSO_FAILED = "Single sign-on failed"


class SsoStartView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    @staticmethod
    def get_settings(attr: str, *args: object) -> object:
        return sso.read_setting(attr, *args)


class SsoCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    @staticmethod
    def get_settings(attr: str, *args: object) -> object:
        return sso.read_setting(attr, *args)

    def login_failure(self) -> HttpResponse:
        # Back to the sign-in page with the reason, not to "/" (the library's default),
        # which would only send the person to the sign-in page without one.
        request = self.request
        reason = getattr(request, REFUSAL_ATTRIBUTE, "")
        if request.GET.get("error"):
            reason = "the identity provider did not sign you in"
        messages.error(request, f"{SSO_FAILED}: {reason or 'your account was not accepted'}.")
        return redirect("login")


def login(request: HttpRequest) -> HttpResponseBase:
    view = auth_views.LoginView.as_view(authentication_form=PasswordSignInForm)
    return view(request)


@require_GET
def sso_start(request: HttpRequest) -> HttpResponse:
    if not sso.sso_enabled():
        raise Http404("single sign-on is not configured")
    try:
        discovery.endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT")
    except discovery.DiscoveryError:
        messages.error(request, f"{SSO_FAILED}: the identity provider could not be reached.")
        return redirect("login")
    response: HttpResponse = SsoStartView.as_view()(request)
    return response


@require_GET
def sso_callback(request: HttpRequest) -> HttpResponse:
    if not sso.sso_enabled():
        raise Http404("single sign-on is not configured")
    response: HttpResponse = SsoCallbackView.as_view()(request)
    return response


def provider_logout_url(request: HttpRequest) -> str:
    """The provider's end-session URL for this session, or "" to stay with us."""
    id_token = request.session.get("oidc_id_token")
    if not (sso.sso_enabled() and settings.OIDC_LOGOUT_AT_PROVIDER and id_token):
        return ""
    try:
        end_session = discovery.endpoint("OIDC_OP_END_SESSION_ENDPOINT")
    except discovery.DiscoveryError:
        return ""
    if not end_session:
        return ""
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(resolve_url("login")),
        }
    )
    return f"{end_session}?{query}"


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Ends our session; with OIDC_LOGOUT_AT_PROVIDER, the provider's session next."""
    at_provider = provider_logout_url(request)
    auth.logout(request)
    return HttpResponseRedirect(at_provider or resolve_url(settings.LOGOUT_REDIRECT_URL))
