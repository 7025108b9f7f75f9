from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave import health
from conclave.metrics import exposition
from events.models import SigningMode


class ProbeApi(APIView):
    """Public, unthrottled and unauthenticated: probes must never be refused."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()


class HealthApi(ProbeApi):
    @extend_schema_serializer(component_name="Health")
    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ok"])
        uptime_seconds = serializers.FloatField()
        hsm_mode = serializers.ChoiceField(choices=SigningMode.choices)

    @extend_schema(operation_id="health", responses={200: OutputSerializer}, tags=["health"])
    def get(self, request: Request) -> Response:
        return Response(
            {
                "status": "ok",
                "uptime_seconds": health.uptime_seconds(),
                "hsm_mode": settings.HSM_MODE,
            }
        )


class HealthAliasApi(HealthApi):
    @extend_schema(
        operation_id="health_alias",
        description="Alias of /v1/health kept for the workshop's monitors.",
        responses={200: HealthApi.OutputSerializer},
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


COMPONENT_STATUSES = ["connected", "unavailable", "not_configured"]


class ReadyApi(ProbeApi):
    @extend_schema_serializer(component_name="Readiness")
    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ready", "not_ready"])
        database = serializers.ChoiceField(choices=COMPONENT_STATUSES)
        redis = serializers.ChoiceField(choices=COMPONENT_STATUSES)
        broker = serializers.ChoiceField(choices=COMPONENT_STATUSES)
        down = serializers.ListField(child=serializers.CharField(), required=False)

    @extend_schema(
        operation_id="ready",
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(OutputSerializer, description="Names the components down."),
        },
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        ready, body = health.readiness()
        return Response(body, status=status.HTTP_200_OK if ready else 503)


def metrics_view(request: HttpRequest) -> HttpResponse:
    payload, content_type = exposition()
    return HttpResponse(payload, content_type=content_type)


class MeApi(APIView):
    """Who the presented credentials belong to."""

    permission_classes = (IsAuthenticated,)

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        is_staff = serializers.BooleanField()
        groups = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="me", responses={200: OutputSerializer}, tags=["accounts"])
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "is_staff": user.is_staff,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }
        return Response(self.OutputSerializer(data).data)
