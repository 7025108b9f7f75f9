"""`POST /api/telegram/webhook`: where Telegram delivers the ordering bot's updates."""

import hmac
from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bot.conversation import update_handle
from conclave.exceptions import Forbidden
from conclave.openapi import ErrorSerializer

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


class TelegramWebhookApi(APIView):
    """Telegram sends every update with the secret given to `setWebhook` in
    `X-Telegram-Bot-Api-Secret-Token`; a request without `TELEGRAM_WEBHOOK_SECRET` in it is
    refused (403), and so is every request while no secret is configured. The answer is
    `{}`, or for a button press the `answerCallbackQuery` Telegram runs from it."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    # The secret is the gate; Telegram's own delivery is not to be throttled.
    throttle_classes = ()

    @extend_schema(
        operation_id="telegram_webhook",
        request=inline_serializer(
            "TelegramUpdate",
            {
                "update_id": serializers.IntegerField(min_value=0),
                "message": serializers.DictField(required=False),
                "callback_query": serializers.DictField(required=False),
            },
        ),
        parameters=[
            OpenApiParameter(
                SECRET_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="TELEGRAM_WEBHOOK_SECRET, as given to setWebhook.",
            )
        ],
        responses={
            200: inline_serializer(
                "TelegramWebhookAnswer",
                {
                    "method": serializers.CharField(required=False),
                    "callback_query_id": serializers.CharField(required=False),
                    "text": serializers.CharField(required=False),
                },
            ),
            403: OpenApiResponse(ErrorSerializer, description="Wrong or missing secret."),
        },
        tags=["telegram"],
    )
    def post(self, request: Request) -> Response:
        expected = settings.TELEGRAM_WEBHOOK_SECRET
        given = request.headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Forbidden("Wrong or missing X-Telegram-Bot-Api-Secret-Token.")
        answer: dict[str, Any] = update_handle(request.data)
        return Response(answer)
