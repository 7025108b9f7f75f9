"""Mechanics: login, profile, password change and their own figures."""

from django.conf import settings
from django.contrib.auth import authenticate, update_session_auth_hash
from django.core.cache import cache
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from conclave.exceptions import DomainError
from conclave.idempotency import idempotent
from conclave.serializers import StrictInputSerializer
from orders.apis.common import (
    HandlesOrders,
    IsMechanic,
    OrderPagination,
    PagedQuery,
    mechanic_from,
    no_parameters_check,
    signed_in,
)
from orders.models import Language, MechanicProfile
from orders.selectors import mechanic_of, mechanic_stats, mechanics_listed
from orders.services import mechanic_password_change, mechanic_update


class LoginLocked(DomainError):
    status_code = 429
    error = "locked_out"
    default_detail = "Too many failed logins for this user; try again later."


class InvalidCredentials(DomainError):
    status_code = 401
    error = "invalid_credentials"
    default_detail = "Wrong username or password."


def _lock_key(username: str) -> str:
    return f"login-failures:{username.lower()}"


class MechanicLoginApi(APIView):
    """`POST /api/mechanic/login` → `{"token": ...}`: throttled per address, and a username
    is locked for LOGIN_LOCKOUT_SECONDS after LOGIN_LOCKOUT_FAILURES failures."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "login"

    @extend_schema_serializer(component_name="MechanicLoginInput")
    class InputSerializer(StrictInputSerializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema(
        operation_id="mechanic_login",
        request=InputSerializer,
        responses={200: inline_serializer("MechanicToken", {"token": serializers.CharField()})},
        tags=["mechanics"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        failures = cache.get(_lock_key(username), 0)
        if failures >= settings.LOGIN_LOCKOUT_FAILURES:
            raise LoginLocked(retry_after=settings.LOGIN_LOCKOUT_SECONDS)
        user = authenticate(
            request, username=username, password=serializer.validated_data["password"]
        )
        if user is None or mechanic_of(user) is None:
            cache.set(_lock_key(username), failures + 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)
            raise InvalidCredentials()
        cache.delete(_lock_key(username))
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


@extend_schema_serializer(component_name="MechanicProfile")
class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    display_name = serializers.CharField()
    phone = serializers.CharField()
    language = serializers.ChoiceField(choices=Language.choices)
    telegram_linked = serializers.SerializerMethodField()

    def get_telegram_linked(self, mechanic: MechanicProfile) -> bool:
        return mechanic.telegram_chat_id is not None


class MechanicProfileApi(APIView):
    """The mechanic's own profile."""

    permission_classes = (IsMechanic,)

    @extend_schema_serializer(component_name="MechanicProfileInput")
    class InputSerializer(StrictInputSerializer):
        display_name = serializers.CharField(max_length=100, required=False)
        phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
        language = serializers.ChoiceField(choices=Language.choices, required=False)

    @extend_schema(
        operation_id="mechanic_profile", responses={200: ProfileSerializer}, tags=["mechanics"]
    )
    def get(self, request: Request) -> Response:
        no_parameters_check(request)
        return Response(ProfileSerializer(mechanic_from(request)).data)

    @extend_schema(
        operation_id="mechanic_profile_update",
        request=InputSerializer,
        responses={200: ProfileSerializer},
        tags=["mechanics"],
    )
    @idempotent
    def patch(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mechanic = mechanic_update(mechanic=mechanic_from(request), **serializer.validated_data)
        return Response(ProfileSerializer(mechanic).data)


class MechanicPasswordApi(APIView):
    """Changes the mechanic's password: the current one is required, the new one must pass
    Django's validators, and every earlier token stops working (the answer holds a new one)."""

    permission_classes = (IsMechanic,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "login"

    @extend_schema_serializer(component_name="PasswordChangeInput")
    class InputSerializer(StrictInputSerializer):
        current_password = serializers.CharField(max_length=256, trim_whitespace=False)
        new_password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema(
        operation_id="mechanic_password_change",
        request=InputSerializer,
        responses={200: inline_serializer("NewToken", {"token": serializers.CharField()})},
        tags=["mechanics"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = signed_in(request)
        mechanic_password_change(user=user, **serializer.validated_data)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request._request, user)  # the browser stays signed in
        return Response({"token": Token.objects.create(user=user).key})


class MechanicStatsApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="mechanic_stats",
        responses={
            200: inline_serializer(
                "MechanicStats",
                {
                    "active_orders": serializers.IntegerField(),
                    "by_status": serializers.DictField(child=serializers.IntegerField()),
                    "completed_today": serializers.IntegerField(),
                    "time_today_seconds": serializers.IntegerField(),
                    "all_time": inline_serializer(
                        "MechanicAllTime",
                        {
                            "orders": serializers.IntegerField(),
                            "completed": serializers.IntegerField(),
                            "time_seconds": serializers.IntegerField(),
                        },
                    ),
                },
            )
        },
        tags=["mechanics"],
    )
    def get(self, request: Request) -> Response:
        no_parameters_check(request)
        return Response(mechanic_stats(mechanic_from(request)))


@extend_schema_serializer(component_name="MechanicListed")
class MechanicListedSerializer(ProfileSerializer):
    active = serializers.BooleanField(source="is_active")
    open_orders = serializers.IntegerField(help_text="Orders of theirs not finished yet.")


class MechanicsApi(APIView):
    """`GET /api/admin/mechanics`: the mechanics staff assign orders to (their ids for
    `POST /api/admin/orders/<id>/assign` and `GET /api/orders?mechanic_id=`)."""

    permission_classes = (HandlesOrders,)
    pagination_class = OrderPagination

    class FilterSerializer(PagedQuery):
        active = serializers.BooleanField(
            required=False, allow_null=True, default=None, help_text="Only active (or not)."
        )

    @extend_schema(
        operation_id="mechanic_list",
        parameters=[FilterSerializer],
        responses={200: MechanicListedSerializer(many=True)},
        tags=["mechanics"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        mechanics = mechanics_listed(active=filters.validated_data["active"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(mechanics, request, view=self) or []
        return paginator.get_paginated_response(MechanicListedSerializer(page, many=True).data)
