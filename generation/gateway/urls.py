from __future__ import annotations

from django.urls import path

from generation.gateway import views

app_name = "gateway"

urlpatterns = [
    path("models", views.list_models, name="models"),
    path("chat/completions", views.chat_completions, name="chat_completions"),
]
