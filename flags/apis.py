"""The flags over HTTP: the public map the front ends read, and staff management."""

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave.idempotency import idempotent
from conclave.serializers import StrictInputSerializer
from events.services import actor_of
from flags.constants import FLAG_NAMES
from flags.selectors import flags_detail, request_flags
from flags.services import flag_set, flags_kill_switch


class CanManageFlags(BasePermission):
    """Staff holding the flags' change permission (the flag managers' group)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_staff
            and user.has_perm("flags.change_featureflag")
        )  # fmt: skip


def _actor(request: Request) -> str:
    return actor_of(request.user)


class FeatureFlagsApi(APIView):
    """`GET /api/config/feature-flags`: exactly the six-key map of the rollout runbook.

    Public and read by every page, it costs no query (the process's snapshot); like the
    health probes it is not throttled, since a throttle would cost more than the answer.
    Under gunicorn the plain request is answered in front of Django by flags.fastpath with
    the same body and headers; this view defines the endpoint and answers everything else.
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    @extend_schema(
        operation_id="feature_flags",
        responses={
            200: inline_serializer(
                "FeatureFlags", {name: serializers.BooleanField() for name in FLAG_NAMES}
            )
        },
        tags=["flags"],
    )
    def get(self, request: Request) -> Response:
        flags = request_flags(request)
        return Response({name: flags[name] for name in FLAG_NAMES})


@extend_schema_serializer(component_name="FeatureFlagDetail")
class FlagDetailSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=FLAG_NAMES)
    enabled = serializers.BooleanField()
    stored = serializers.BooleanField()
    pinned = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True)


def _detail(name: str) -> dict[str, Any]:
    return next(flag for flag in flags_detail() if flag["name"] == name)


class FlagListApi(APIView):
    permission_classes = (CanManageFlags,)

    @extend_schema(
        operation_id="feature_flags_detail",
        responses={200: FlagDetailSerializer(many=True)},
        tags=["flags"],
    )
    def get(self, request: Request) -> Response:
        return Response(FlagDetailSerializer(flags_detail(), many=True).data)


class FlagSetApi(APIView):
    permission_classes = (CanManageFlags,)

    @extend_schema_serializer(component_name="FeatureFlagSetInput")
    class InputSerializer(StrictInputSerializer):
        enabled = serializers.BooleanField()

    @extend_schema(
        operation_id="feature_flag_set",
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, enum=FLAG_NAMES)],
        request=InputSerializer,
        responses={200: FlagDetailSerializer},
        tags=["flags"],
        description="409 when the flag is pinned by its environment variable.",
    )
    @idempotent
    def put(self, request: Request, name: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flag_set(name=name, enabled=serializer.validated_data["enabled"], actor=_actor(request))
        return Response(FlagDetailSerializer(_detail(name)).data)


class KillSwitchApi(APIView):
    permission_classes = (CanManageFlags,)

    @extend_schema(
        operation_id="feature_flags_kill_switch",
        request=None,
        responses={
            200: inline_serializer(
                "KillSwitchResult",
                {
                    "switched_off": serializers.ListField(child=serializers.CharField()),
                    "pinned": serializers.ListField(child=serializers.CharField()),
                },
            )
        },
        tags=["flags"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        return Response(flags_kill_switch(actor=_actor(request)))
