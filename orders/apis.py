"""The workshop's REST API (SPEC 4): orders, the mechanic's status changes and login, the
catalog."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.cache import cache
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from conclave.exceptions import DomainError, FeatureDisabled, NotFound, ValidationFailed
from conclave.serializers import StrictInputSerializer
from flags.selectors import request_flags
from orders.models import Language, MechanicProfile, Order, OrderStatus, PartOrigin, TimeEntry
from orders.selectors import categories, mechanic_of, orders_visible_to, parts
from orders.services import (
    comment_add,
    order_assign,
    order_create,
    order_status_change,
    time_entry_add,
    timer_start,
    timer_stop,
)


class LoginLocked(DomainError):
    status_code = 429
    error = "locked_out"
    default_detail = "Too many failed logins for this user; try again later."


class InvalidCredentials(DomainError):
    status_code = 401
    error = "invalid_credentials"
    default_detail = "Wrong username or password."


class AnonymousOrderThrottle(AnonRateThrottle):
    """Anonymous order creation, per client address (the runbook's curl has no token)."""

    scope = "orders_anon"


class IsMechanic(BasePermission):
    message = "This needs a mechanic's token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return mechanic_of(request.user) is not None


class OrderPagination(PageNumberPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


def signed_in(request: Request) -> User:
    """The request's user; the view's permission class has already required one."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def _mechanic(request: Request) -> MechanicProfile:
    mechanic = mechanic_of(request.user)
    if mechanic is None:
        raise NotAuthenticated()
    return mechanic


def order_json(order: Order, flags: Mapping[str, bool]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": order.pk,
        "mechanic_name": order.mechanic_name,
        "vin": order.vin,
        "part_type": order.part_type,
        "category": order.category,
        "original_or_analog": order.original_or_analog,
        "status": order.status,
        "mechanic_id": order.mechanic_id,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
    if flags["ENABLE_CAR_NUMBER"]:
        data["car_number"] = order.car_number or None
    return data


@extend_schema_serializer(component_name="Order")
class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mechanic_name = serializers.CharField()
    vin = serializers.CharField()
    car_number = serializers.CharField(
        required=False, allow_null=True, help_text="Only while ENABLE_CAR_NUMBER is on."
    )
    part_type = serializers.CharField()
    category = serializers.CharField()
    original_or_analog = serializers.ChoiceField(choices=PartOrigin.choices)
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    mechanic_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrdersApi(APIView):
    """`POST /api/orders` (anyone, throttled) and `GET /api/orders` (staff: all; a mechanic:
    their own)."""

    @extend_schema_serializer(component_name="OrderCreateInput")
    class InputSerializer(StrictInputSerializer):
        mechanic_name = serializers.CharField(max_length=100)
        vin = serializers.CharField(max_length=17)
        car_number = serializers.CharField(max_length=20, required=False, allow_blank=True)
        part_type = serializers.CharField(max_length=100)
        category = serializers.CharField(max_length=100)
        original_or_analog = serializers.ChoiceField(choices=PartOrigin.choices)

    class FilterSerializer(StrictInputSerializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
        mechanic_id = serializers.IntegerField(required=False, min_value=1)
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_throttles(self) -> list[Any]:
        if self.request.method == "POST":
            return [AnonymousOrderThrottle(), UserRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        operation_id="order_create",
        request=InputSerializer,
        responses={201: OrderOutputSerializer},
        tags=["orders"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flags = request_flags(request)
        order = order_create(**serializer.validated_data, created_by=request.user, flags=flags)
        return Response(order_json(order, flags), status=201)

    @extend_schema(
        operation_id="order_list",
        parameters=[FilterSerializer],
        responses={200: OrderOutputSerializer(many=True)},
        tags=["orders"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = orders_visible_to(request.user)
        if "status" in filters.validated_data:
            orders = orders.filter(status=filters.validated_data["status"])
        if "mechanic_id" in filters.validated_data:
            orders = orders.filter(mechanic_id=filters.validated_data["mechanic_id"])
        paginator = OrderPagination()
        page = paginator.paginate_queryset(orders, request, view=self) or []
        flags = request_flags(request)
        return paginator.get_paginated_response([order_json(order, flags) for order in page])


class OrderDetailApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="order_detail", responses={200: OrderOutputSerializer}, tags=["orders"]
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = orders_visible_to(request.user).filter(pk=order_id).first()
        if order is None:
            raise NotFound(f"No order {order_id}.")
        return Response(order_json(order, request_flags(request)))


class OrderStatusApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema_serializer(component_name="OrderStatusInput")
    class InputSerializer(StrictInputSerializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices)

    @extend_schema(
        operation_id="order_status_change",
        request=InputSerializer,
        responses={200: OrderOutputSerializer},
        tags=["orders"],
        description="The mechanic's own order only (others are 404). An illegal move is 409 "
        "with `allowed` naming the statuses it may move to.",
    )
    def patch(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = order_status_change(
            order_id=order_id,
            status=serializer.validated_data["status"],
            mechanic=_mechanic(request),
        )
        return Response(order_json(order, request_flags(request)))


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


def _language(request: Request) -> str:
    wanted = request.query_params.get("lang") or (
        mechanic.language if (mechanic := mechanic_of(request.user)) else ""
    )
    if not wanted:
        wanted = (request.headers.get("Accept-Language") or "en")[:2].lower()
    return wanted if wanted in Language.values else Language.ENGLISH


def _catalog_open(request: Request) -> None:
    if not request_flags(request)["ENABLE_PART_CATEGORIES"]:
        raise FeatureDisabled("The parts catalog is switched off (ENABLE_PART_CATEGORIES).")


@extend_schema_serializer(component_name="Category")
class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    icon = serializers.CharField()
    sort_order = serializers.IntegerField()


@extend_schema_serializer(component_name="Part")
class PartSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    category_id = serializers.IntegerField()
    name = serializers.CharField()
    part_number = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    is_common = serializers.BooleanField()


class CategoriesApi(APIView):
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="category_list",
        parameters=[OpenApiParameter("lang", str, enum=Language.values, required=False)],
        responses={200: CategorySerializer(many=True)},
        tags=["catalog"],
        description="404 `feature_disabled` while ENABLE_PART_CATEGORIES is off.",
    )
    def get(self, request: Request) -> Response:
        _catalog_open(request)
        language = _language(request)
        return Response(
            [
                {"id": c.pk, "name": c.name(language), "icon": c.icon, "sort_order": c.sort_order}
                for c in categories()
            ]
        )


class PartsApi(APIView):
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="part_list",
        parameters=[
            OpenApiParameter("category_id", int, required=False),
            OpenApiParameter("lang", str, enum=Language.values, required=False),
        ],
        responses={200: PartSerializer(many=True)},
        tags=["catalog"],
        description="404 `feature_disabled` while ENABLE_PART_CATEGORIES is off.",
    )
    def get(self, request: Request) -> Response:
        _catalog_open(request)
        raw = request.query_params.get("category_id")
        if raw is not None and not raw.isdigit():
            raise ValidationFailed({"category_id": ["A whole number."]})
        language = _language(request)
        return Response(
            [
                {
                    "id": p.pk,
                    "category_id": p.category_id,
                    "name": p.name(language),
                    "part_number": p.part_number,
                    "price": str(p.price),
                    "is_common": p.is_common,
                }
                for p in parts(category_id=int(raw) if raw is not None else None)
            ]
        )


class OrderAssignApi(APIView):
    permission_classes = (IsAdminUser,)

    @extend_schema_serializer(component_name="OrderAssignInput")
    class InputSerializer(StrictInputSerializer):
        mechanic_id = serializers.IntegerField(min_value=1)
        notes = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        operation_id="order_assign",
        request=InputSerializer,
        responses={200: OrderOutputSerializer},
        tags=["orders"],
        description="Assign or reassign an order to an active mechanic (inactive: 409).",
    )
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = order_assign(
            order_id=order_id, actor=signed_in(request), **serializer.validated_data
        )
        return Response(order_json(order, request_flags(request)))


@extend_schema_serializer(component_name="OrderComment")
class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username")
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class OrderCommentsApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema_serializer(component_name="OrderCommentInput")
    class InputSerializer(StrictInputSerializer):
        text = serializers.CharField(max_length=2000)

    def _order(self, request: Request, order_id: int) -> Order:
        order = orders_visible_to(request.user).filter(pk=order_id).first()
        if order is None:
            raise NotFound(f"No order {order_id}.")
        return order

    @extend_schema(
        operation_id="order_comments",
        responses={200: CommentSerializer(many=True)},
        tags=["orders"],
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = self._order(request, order_id)
        comments = order.comments.select_related("author").order_by("id")
        return Response(CommentSerializer(comments, many=True).data)

    @extend_schema(
        operation_id="order_comment_add",
        request=InputSerializer,
        responses={201: CommentSerializer},
        tags=["orders"],
    )
    def post(self, request: Request, order_id: int) -> Response:
        order = self._order(request, order_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = comment_add(order=order, author=signed_in(request), **serializer.validated_data)
        return Response(CommentSerializer(comment).data, status=201)


@extend_schema_serializer(component_name="TimeEntry")
class TimeEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.IntegerField()
    manual = serializers.BooleanField()
    notes = serializers.CharField()


class TimerStartApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="timer_start",
        request=None,
        responses={201: TimeEntrySerializer},
        tags=["time"],
        description="409 while another timer of the mechanic runs.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        entry = timer_start(order_id=order_id, mechanic=_mechanic(request))
        return Response(TimeEntrySerializer(entry).data, status=201)


class TimerStopApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="timer_stop", request=None, responses={200: TimeEntrySerializer}, tags=["time"]
    )
    def post(self, request: Request) -> Response:
        return Response(TimeEntrySerializer(timer_stop(mechanic=_mechanic(request))).data)


class TimerActiveApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="timer_active",
        responses={
            200: inline_serializer("ActiveTimer", {"entry": TimeEntrySerializer(allow_null=True)})
        },
        tags=["time"],
        description='`{"entry": null}` when no timer of the mechanic runs.',
    )
    def get(self, request: Request) -> Response:
        entry = TimeEntry.objects.filter(mechanic=_mechanic(request), ended_at__isnull=True).first()
        return Response({"entry": TimeEntrySerializer(entry).data if entry else None})


class OrderTimeApi(APIView):
    """An order's time entries and total (staff, or the order's mechanic), and the mechanic's
    manual entries."""

    @extend_schema_serializer(component_name="TimeEntryInput")
    class InputSerializer(StrictInputSerializer):
        started_at = serializers.DateTimeField()
        ended_at = serializers.DateTimeField()
        notes = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def get_permissions(self) -> list[BasePermission]:
        return [IsMechanic()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="order_time",
        responses={
            200: inline_serializer(
                "OrderTime",
                {
                    "entries": TimeEntrySerializer(many=True),
                    "total_seconds": serializers.IntegerField(),
                },
            )
        },
        tags=["time"],
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = orders_visible_to(request.user).filter(pk=order_id).first()
        if order is None:
            raise NotFound(f"No order {order_id}.")
        entries = list(order.time_entries.order_by("started_at", "id"))
        return Response(
            {
                "entries": TimeEntrySerializer(entries, many=True).data,
                "total_seconds": sum(entry.seconds for entry in entries),
            }
        )

    @extend_schema(
        operation_id="time_entry_add",
        request=InputSerializer,
        responses={201: TimeEntrySerializer},
        tags=["time"],
    )
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = time_entry_add(
            order_id=order_id, mechanic=_mechanic(request), **serializer.validated_data
        )
        return Response(TimeEntrySerializer(entry).data, status=201)
