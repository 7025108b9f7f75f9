from django.urls import path

from bot.apis import TelegramWebhookApi

urlpatterns = [
    path("telegram/webhook", TelegramWebhookApi.as_view(), name="telegram-webhook"),
]
