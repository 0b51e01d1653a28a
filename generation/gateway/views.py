"""GET /v1/models (and /v1/models/{id}), POST /v1/chat/completions and POST
/v1/embeddings, in OpenAI's wire format.

Plain async function views: auth is the bearer token only (no session, so no CSRF),
and nothing from the request (no header, no base URL) reaches the provider call but
the parsed chat parameters.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from asgiref.sync import sync_to_async
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

from generation.gateway import routing
from generation.gateway.embeddings import EmbeddingCall, embeddings_body, parse_embeddings
from generation.gateway.errors import (
    GatewayError,
    from_bad_body,
    from_invalid_request,
    from_provider_error,
    over_budget,
)
from generation.gateway.services import (
    aembed_for_api,
    agenerate_for_api,
    agenerate_routed_for_api,
    aopen_call,
    aopen_routed_call,
)
from generation.gateway.shapes import Completion
from generation.gateway.streaming import GatewayStream
from generation.gateway.translate import ChatCall, parse_chat
from generation.json_api import BadBody, read_json_body
from providers import engine
from providers.validation import InvalidRequest
from usage.budgets import BudgetExceeded

logger = logging.getLogger("generation.gateway")


def _method_not_allowed(allowed: str) -> JsonResponse:
    error = GatewayError(405, f"Use {allowed} for this endpoint.", code="method_not_allowed")
    response = error.response()
    response["Allow"] = allowed
    return response


async def _admit(request: HttpRequest) -> routing.Caller:
    return await sync_to_async(routing.admit)(request.headers.get("Authorization", ""))


@csrf_exempt
async def list_models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        caller = await _admit(request)
    except GatewayError as error:
        return error.response()
    names = routing.model_names(await routing.models_by_provider(caller.providers), caller.aliases)
    return JsonResponse({"object": "list", "data": [_model(name, owner) for name, owner in names]})


@csrf_exempt
async def retrieve_model(request: HttpRequest, model_id: str) -> HttpResponse:
    """GET /v1/models/{id}: one entry of the list above (the SDK's models.retrieve)."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        caller = await _admit(request)
    except GatewayError as error:
        return error.response()
    names = routing.model_names(await routing.models_by_provider(caller.providers), caller.aliases)
    for name, owner in names:
        if name == model_id:
            return JsonResponse(_model(name, owner))
    message = f"The model {model_id!r} does not exist or you do not have access to it."
    return GatewayError(404, message, param="model", code="model_not_found").response()


def _model(name: str, owner: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return _method_not_allowed("POST")
    request_id = uuid.uuid4().hex
    response = await _chat_completions(request, request_id)
    # The key of the call's usage records: what a user quotes when asking about a call.
    response["x-request-id"] = request_id
    return response


async def _chat_completions(request: HttpRequest, request_id: str) -> HttpResponseBase:
    call = None
    try:
        caller = await _admit(request)
        call = parse_chat(read_json_body(request))
        if (aliased := routing.resolve_alias(call.model, caller)) is not None:
            return await _answer_routed(caller, aliased, call, request_id)
        route = await routing.resolve(call.model, caller.providers)
        return await _answer(caller, route, call, request_id)
    except GatewayError as error:
        return error.response()
    except BadBody as exc:
        return from_bad_body(exc).response()
    except InvalidRequest as exc:
        return from_invalid_request(exc, call.params if call else {}).response()
    except BudgetExceeded as exc:
        return over_budget(exc.reason).response()


async def _answer(
    caller: routing.Caller, route: routing.Route, call: ChatCall, request_id: str
) -> HttpResponseBase:
    user, provider = caller.token.user, route.provider
    request = replace(call.request, model=route.model, cache_scope=str(user.pk))
    completion = Completion(model=call.model, provider_kind=provider.kind)
    logger.info(
        "gateway call token=%s provider=%s stream=%s messages=%d",
        caller.token.prefix,
        provider.pk,
        call.stream,
        len(request.messages),
    )
    request = await engine.avalidate_request(provider, request)
    if not call.stream:
        result = await agenerate_for_api(
            user=user, provider=provider, request=request, request_id=request_id
        )
        if result.error is not None:
            return from_provider_error(result.error).response()
        return JsonResponse(completion.body(result))
    reservation = await aopen_call(
        user=user, provider=provider, request=request, request_id=request_id
    )
    stream = GatewayStream(
        user=user,
        provider=provider,
        request=request,
        reservation=reservation,
        request_id=request_id,
        completion=completion,
        include_usage=call.include_usage,
    )
    return await _stream_response(stream)


async def _answer_routed(
    caller: routing.Caller, route: routing.AliasRoute, call: ChatCall, request_id: str
) -> HttpResponseBase:
    """`_answer` through an alias: checked against its first target, held for the
    costliest, each target tried in turn (routing.engine)."""
    user, first = caller.token.user, route.targets[0]
    request = replace(call.request, model=first.model, cache_scope=str(user.pk))
    logger.info(
        "gateway call token=%s alias=%s targets=%d stream=%s messages=%d",
        caller.token.prefix,
        route.alias,
        len(route.targets),
        call.stream,
        len(request.messages),
    )
    request = await engine.avalidate_request(first.provider, request)
    if not call.stream:
        result, target = await agenerate_routed_for_api(
            user=user,
            alias=route.alias,
            targets=route.targets,
            request=request,
            request_id=request_id,
        )
        if result.error is not None:
            return from_provider_error(result.error).response()
        completion = Completion(model=call.model, provider_kind=target.provider.kind)
        return JsonResponse(completion.body(result))
    reservation = await aopen_routed_call(
        user=user,
        targets=route.targets,
        request=request,
        request_id=request_id,
        alias=route.alias,
    )
    stream = GatewayStream(
        user=user,
        provider=first.provider,
        request=request,
        reservation=reservation,
        request_id=request_id,
        completion=Completion(model=call.model, provider_kind=first.provider.kind),
        include_usage=call.include_usage,
        alias=route.alias,
        targets=route.targets,
    )
    return await _stream_response(stream)


async def _stream_response(stream: GatewayStream) -> HttpResponseBase:
    first = await stream.start()
    if stream.result is not None and stream.result.error is not None:
        return from_provider_error(stream.result.error).response()
    response = StreamingHttpResponse(stream.events(first), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once
    return response


@csrf_exempt
async def embeddings(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return _method_not_allowed("POST")
    request_id = uuid.uuid4().hex
    response = await _embeddings(request, request_id)
    response["x-request-id"] = request_id  # the key of the call's usage records
    return response


async def _embeddings(request: HttpRequest, request_id: str) -> HttpResponseBase:
    try:
        caller = await _admit(request)
        call = parse_embeddings(read_json_body(request))
        route = await routing.resolve(call.model, caller.providers)
        return await _embed(caller, route, call, request_id)
    except GatewayError as error:
        return error.response()
    except BadBody as exc:
        return from_bad_body(exc).response()
    except InvalidRequest as exc:
        return from_invalid_request(exc, {}).response()
    except BudgetExceeded as exc:
        return over_budget(exc.reason).response()


async def _embed(
    caller: routing.Caller, route: routing.Route, call: EmbeddingCall, request_id: str
) -> HttpResponseBase:
    provider = route.provider
    request = await engine.avalidate_embedding_request(
        provider, replace(call.request, model=route.model)
    )
    logger.info(
        "gateway embeddings token=%s provider=%s inputs=%d",
        caller.token.prefix,
        provider.pk,
        len(request.inputs),
    )
    result = await aembed_for_api(
        user=caller.token.user, provider=provider, request=request, request_id=request_id
    )
    if result.error is not None:
        return from_provider_error(result.error).response()
    return JsonResponse(embeddings_body(call, result))
