"""The sidebar's search: GET /search/?q=... answers htmx with the list of results (the
sidebar swaps it in as the user types) and anything else with a page of its own, so
that the search form works without script too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from generation.forms import SearchForm
from generation.search import search_conversations

if TYPE_CHECKING:
    from config.request_types import AuthenticatedHttpRequest


@login_required
@require_GET
def search(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    ctx: dict[str, Any] = {"form": form, "query": "", "hits": []}
    if form.is_valid():
        ctx["query"] = form.cleaned_data["q"].strip()
        ctx["hits"] = search_conversations(user=request.user, query=ctx["query"])
    else:
        ctx["error"] = form.errors["q"][0]
    if not request.htmx or request.htmx.boosted:
        ctx["conversations"] = request.user.conversations.all()[:200]  # the sidebar's list
        return render(request, "generation/search.html", ctx)
    if not ctx["query"] and "error" not in ctx:
        # Nothing typed (or the box cleared): an empty answer, and the sidebar shows
        # the conversation list again.
        return HttpResponse("")
    return render(request, "generation/_search_results.html", ctx)
