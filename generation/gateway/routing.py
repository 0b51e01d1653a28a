"""Who is calling, and which provider (or alias) a model name means.

Models are named ``<provider name>/<model>``; a plain name is an alias when an active
alias has it (routing: fallbacks and load spreading), else a ``<model>`` that exactly
one active provider offers. Each provider's list comes from the engine's models
cache; a provider whose list cannot be fetched offers its default model.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from generation.api_tokens import ApiToken
from generation.gateway.errors import GatewayError, invalid_token, model_not_found
from generation.gateway.ratelimit import seconds_until_allowed
from providers import engine
from providers.errors import ProviderError
from providers.models import Provider
from routing.plans import Target
from routing.services import AliasUnavailable, alias_targets, plan_or_refuse


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    providers: list[Provider]  # the active ones, longest name first
    aliases: dict[str, list[Target]] = field(default_factory=dict)  # active, by name


@dataclass(frozen=True)
class Route:
    provider: Provider
    model: str  # the provider's own name for it


@dataclass(frozen=True)
class AliasRoute:
    alias: str
    targets: list[Target]  # in the order this call tries them (`routing.plans.plan`)


def admit(authorization: str) -> Caller:
    """Authenticate, apply the token's rate limit, load the providers: one DB round.

    Sync (the ORM); the views call it once through `sync_to_async`.
    """
    scheme, _, raw = authorization.partition(" ")
    token = ApiToken.authenticate(raw.strip()) if scheme.lower() == "bearer" and raw else None
    if token is None:
        raise invalid_token()
    wait = seconds_until_allowed(token)
    if wait is not None:
        raise GatewayError(
            429,
            f"Rate limit reached for this API token: {token.requests_per_minute} requests "
            "per minute. Try again after the time in the Retry-After header.",
            type="requests",
            code="rate_limit_exceeded",
            retry_after=wait,
            retryable=True,
        )
    providers = sorted(Provider.objects.filter(is_active=True), key=lambda p: -len(p.name))
    return Caller(token=token, providers=providers, aliases=alias_targets())


async def models_by_provider(providers: list[Provider]) -> list[tuple[Provider, list[str]]]:
    lists = await asyncio.gather(*(_models_of(p) for p in providers))
    return list(zip(providers, lists, strict=True))


async def _models_of(provider: Provider) -> list[str]:
    try:
        return await engine.alist_models(provider)
    except ProviderError:
        default = provider.effective_default_model
        return [default] if default else []


ALIAS_OWNER = "switchboard-alias"  # owned_by of an alias in /v1/models


def model_names(
    lists: list[tuple[Provider, list[str]]], aliases: dict[str, list[Target]] | None = None
) -> list[tuple[str, str]]:
    """(name, owner) for every alias, then every ``provider/model`` (owned by the
    provider), then each plain model that exactly one provider offers and no alias is."""
    aliases = aliases or {}
    qualified: list[tuple[str, str]] = [(name, ALIAS_OWNER) for name in sorted(aliases)]
    owners: dict[str, set[str]] = {}
    for provider, models in sorted(lists, key=lambda pair: pair[0].name):
        for model in models:
            qualified.append((f"{provider.name}/{model}", provider.name))
            owners.setdefault(model, set()).add(provider.name)
    plain = sorted(
        (model, owner)
        for model, found in owners.items()
        if len(found) == 1 and model not in aliases
        for owner in found
    )
    return qualified + plain


def resolve_alias(name: str, caller: Caller) -> AliasRoute | None:
    """The route of an alias named `name` (its targets planned for this call), or None.
    Aliases take precedence over a plain model name; GatewayError 503 for an alias with
    no active provider."""
    if name not in caller.aliases:
        return None
    try:
        return AliasRoute(alias=name, targets=plan_or_refuse(name, caller.aliases[name]))
    except AliasUnavailable as exc:
        raise GatewayError(
            503, exc.message, type="server_error", code="alias_unavailable"
        ) from None


async def resolve(name: str, providers: list[Provider]) -> Route:
    for provider in providers:  # longest name first: "a/b" wins over "a" for "a/b/c"
        prefix = f"{provider.name}/"
        if name.startswith(prefix) and len(name) > len(prefix):
            return Route(provider=provider, model=name[len(prefix) :])
    owners = [p for p, models in await models_by_provider(providers) if name in models]
    if len(owners) == 1:
        return Route(provider=owners[0], model=name)
    shown = repr(name[:200])
    if not owners:
        raise model_not_found(f"The model {shown} does not exist. GET /v1/models lists them.")
    choices = ", ".join(repr(f"{p.name}/{name}") for p in owners)
    raise model_not_found(f"Several providers offer {shown}; name one of {choices}.")
