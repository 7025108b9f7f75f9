from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave import health
from conclave.metrics import exposition
from conclave.models import HaltChannel, HaltState
from conclave.openapi import ErrorSerializer
from conclave.selectors import constitutional_health, halt_ceremony_view, halt_state
from conclave.serializers import StrictInputSerializer
from conclave.services import (
    REASON_MAX_LENGTH,
    ceremony_approve,
    ceremony_open,
    halt_clear,
    halt_raise,
)
from events.models import SigningMode
from events.services import actor_of


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
        outbox = inline_serializer(
            "OutboxBacklog",
            {
                "backlog": serializers.IntegerField(),
                "oldest_age_seconds": serializers.FloatField(),
            },
            required=False,
            help_text="Telegram messages waiting; reported, never a reason to be unready.",
        )

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


@require_safe
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


class HaltStateSerializer(serializers.Serializer):
    is_halted = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    halt_number = serializers.IntegerField()
    halted_at = serializers.DateTimeField(allow_null=True)
    halted_by = serializers.CharField()
    channel = serializers.CharField()
    cleared_at = serializers.DateTimeField(allow_null=True)
    cleared_by = serializers.CharField()


def _state(state: HaltState, **extra: Any) -> dict[str, Any]:
    return {**HaltStateSerializer(state).data, **extra}


def _actor(request: Request) -> str:
    return actor_of(request.user)


class StaffApi(APIView):
    permission_classes = (IsAdminUser,)


class HaltApi(StaffApi):
    @extend_schema_serializer(component_name="HaltRaiseInput")
    class InputSerializer(StrictInputSerializer):
        reason = serializers.CharField(max_length=REASON_MAX_LENGTH, trim_whitespace=True)

    @extend_schema(operation_id="halt_status", responses={200: HaltStateSerializer}, tags=["halt"])
    def get(self, request: Request) -> Response:
        return Response(_state(halt_state()))

    @extend_schema(
        operation_id="halt_raise",
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "HaltRaised", {"raised": serializers.BooleanField(), "state": HaltStateSerializer()}
            )
        },
        tags=["halt"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        state, raised = halt_raise(
            reason=serializer.validated_data["reason"],
            actor=_actor(request),
            channel=HaltChannel.API,
        )
        return Response({"raised": raised, "state": _state(state)})


class CeremonyOutputSerializer(serializers.Serializer):
    challenge = serializers.CharField()
    quorum = serializers.IntegerField()
    halt_number = serializers.IntegerField()
    reason = serializers.CharField(allow_null=True)
    approvals = inline_serializer(
        "CeremonyApproval",
        {
            "keeper_id": serializers.CharField(),
            "keeper_key_id": serializers.CharField(),
            "approved_at": serializers.DateTimeField(),
        },
        many=True,
    )


class CeremonyApi(StaffApi):
    @extend_schema(
        operation_id="halt_ceremony",
        responses={
            200: CeremonyOutputSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The system is not halted."),
        },
        tags=["halt"],
        description="The clearing ceremony of the current halt: its single-use challenge "
        "(keepers sign its UTF-8 bytes with `manage.py keeper_sign`), the quorum and the "
        "approvals so far.",
    )
    def get(self, request: Request) -> Response:
        ceremony = ceremony_open(actor=_actor(request))
        return Response(CeremonyOutputSerializer(halt_ceremony_view(ceremony)).data)


class CeremonyApproveApi(StaffApi):
    @extend_schema_serializer(component_name="CeremonyApprovalInput")
    class InputSerializer(StrictInputSerializer):
        keeper_key_id = serializers.CharField(max_length=100)
        signature = serializers.CharField(min_length=128, max_length=128)

    @extend_schema(
        operation_id="halt_ceremony_approve",
        request=InputSerializer,
        responses={201: CeremonyOutputSerializer},
        tags=["halt"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = ceremony_approve(**serializer.validated_data, actor=_actor(request))
        return Response(
            CeremonyOutputSerializer(halt_ceremony_view(approval.ceremony)).data, status=201
        )


class HaltClearApi(StaffApi):
    @extend_schema(
        operation_id="halt_clear",
        request=None,
        responses={200: HaltStateSerializer},
        tags=["halt"],
        description="Clears the halt when a quorum of keepers approved the current challenge "
        "and pre-operational verification passes (no bypass); 409 with the reason otherwise.",
    )
    def post(self, request: Request) -> Response:
        return Response(_state(halt_clear(actor=_actor(request))))


class ConstitutionalHealthApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="health_constitutional",
        responses={200: OpenApiTypes.OBJECT},
        tags=["health"],
        description="Halt state and reason, chain head and integration queue, the last "
        "verification, witness and keeper availability, HSM mode.",
    )
    def get(self, request: Request) -> Response:
        return Response({**constitutional_health(), "hsm_mode": settings.HSM_MODE})
