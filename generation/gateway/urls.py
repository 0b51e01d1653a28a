from __future__ import annotations

from django.urls import path

from generation.gateway import views

app_name = "gateway"

urlpatterns = [
    path("models", views.list_models, name="models"),
    # A model id may hold slashes: "Provider name/model".
    path("models/<path:model_id>", views.retrieve_model, name="model"),
    path("chat/completions", views.chat_completions, name="chat_completions"),
    path("embeddings", views.embeddings, name="embeddings"),
]
