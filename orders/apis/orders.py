"""Orders: create, list, detail, status, assignment, comments and stats (SPEC 4)."""

from collections.abc import Mapping
from typing import Any, cast

from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave.exceptions import ValidationFailed
from conclave.idempotency import idempotent
from conclave.serializers import IdField, StrictInputSerializer
from conclave.throttling import SignedInUserThrottle
from flags.selectors import request_flags
from orders.apis.common import (
    AnonymousOrderThrottle,
    HandlesOrders,
    IsMechanic,
    OrderOutputSerializer,
    OrderPagination,
    PagedQuery,
    mechanic_from,
    no_parameters_check,
    order_json,
    signed_in,
    visible_order,
)
from orders.apis.items import OrderItemSerializer, OrderPhotoSerializer, OrderWorkSerializer
from orders.models import OrderStatus, PartOrigin
from orders.selectors import (
    check_days,
    order_contents,
    order_etag,
    order_stats,
    orders_filtered,
    orders_visible_to,
)
from orders.services import (
    comment_add,
    order_assign,
    order_create,
    order_field_check,
    order_status_change,
    order_status_set,
    order_update,
)
from orders.services.orders import ORDER_FIELDS


class OrderFieldsInput(StrictInputSerializer):
    """The order's own fields, their shape. Their content (a VIN's letters, printable text)
    is the service's to check, once; `order_input` tells both kinds of problem together."""

    mechanic_name = serializers.CharField(max_length=100)
    vin = serializers.CharField(max_length=17)
    car_number = serializers.CharField(max_length=20, required=False, allow_blank=True)
    part_type = serializers.CharField(max_length=100)
    category = serializers.CharField(max_length=100)
    original_or_analog = serializers.ChoiceField(choices=PartOrigin.choices)


def order_input(serializer: OrderFieldsInput, flags: Mapping[str, bool]) -> dict[str, Any]:
    """The serializer's data. When it refuses the body, each of the order's own fields sent
    as text is judged by the order's own check, in its words: a blank name reads as it does
    when the rest of the body is right (not as DRF words it), a name's problem is told beside
    a field missing, and a car number's text is not read while its flag is off (its length
    is). When the serializer accepts the body, the service checks the fields, once."""
    if serializer.is_valid():
        return cast(dict[str, Any], serializer.validated_data)
    errors = dict(serializer.errors)
    sent = serializer.initial_data if isinstance(serializer.initial_data, Mapping) else {}
    for field in ORDER_FIELDS:
        value = sent.get(field)
        if isinstance(value, str):
            errors.pop(field, None)
            try:
                order_field_check(field, value, flags)
            except ValidationFailed as exc:
                errors.update(cast(dict[str, Any], exc.detail))
    if not errors:  # the serializer refused only what the order's checks accept
        return dict(sent)
    raise serializers.ValidationError(errors)


# A new order's fields: those it must have, and all it may have.
ORDER_REQUIRED = frozenset(ORDER_FIELDS) - {"car_number"}
ORDER_ACCEPTED = frozenset(ORDER_FIELDS)


def order_create_input(data: Any, flags: Mapping[str, bool]) -> dict[str, Any]:
    """A new order's fields. The usual body, the order's fields as JSON text (the required
    ones given, none other), goes to `order_create` as sent: it checks each field whole
    (its length, its letters, the origin's choice) and tells every problem at once. Any
    other body goes through the serializer, for the problems of its shape (a field missing
    or unknown, a number for text). The serializer's pass over a valid body was a tenth of
    an order's CPU."""
    if (
        type(data) is dict
        and ORDER_REQUIRED <= data.keys() <= ORDER_ACCEPTED
        and all(type(value) is str for value in data.values())
    ):
        return data
    return order_input(OrdersApi.InputSerializer(data=data), flags)


class OrdersApi(APIView):
    """`POST /api/orders` (anyone, throttled) and `GET /api/orders` (staff: all; a mechanic:
    their own)."""

    @extend_schema_serializer(component_name="OrderCreateInput")
    class InputSerializer(OrderFieldsInput):
        """A new order: its own fields, `car_number` ignored while its flag is off."""

    class FilterSerializer(PagedQuery):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
        mechanic_id = IdField(required=False)
        assigned = serializers.BooleanField(
            required=False,
            allow_null=True,
            default=None,
            help_text="false: the orders no mechanic has yet (anonymous ones, to assign).",
        )
        created_from = serializers.DateField(required=False, help_text="First day, included.")
        created_to = serializers.DateField(required=False, help_text="Last day, included.")
        search = serializers.CharField(
            required=False, max_length=20, help_text="Part of a VIN or (flag on) car number."
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            first, last = attrs.get("created_from"), attrs.get("created_to")
            check_days(created_from=first, created_to=last)
            if first and last and last < first:
                raise serializers.ValidationError(
                    {"created_to": ["Must not be before created_from."]}
                )
            if attrs.get("assigned") is False and attrs.get("mechanic_id"):
                raise serializers.ValidationError({"mechanic_id": ["Not with assigned=false."]})
            return attrs

    pagination_class = OrderPagination  # GET's pages, and the schema's

    def get_permissions(self) -> list[BasePermission]:
        # OPTIONS describes the POST, which anyone may send (DRF asks the POST's permission
        # again for the actions it lists).
        anyone = self.request.method in ("POST", "OPTIONS")
        return [AllowAny()] if anyone else [IsAuthenticated()]

    def get_throttles(self) -> list[Any]:
        if self.request.method == "POST":
            return [AnonymousOrderThrottle(), SignedInUserThrottle()]
        return super().get_throttles()

    @extend_schema(
        operation_id="order_create",
        request=InputSerializer,
        responses={201: OrderOutputSerializer},
        tags=["orders"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        flags = request_flags(request)
        fields = order_create_input(request.data, flags)
        order = order_create(**fields, created_by=request.user, flags=flags)
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
        flags = request_flags(request)
        criteria = {
            k: v for k, v in filters.validated_data.items() if k not in ("page", "page_size")
        }
        orders = orders_filtered(orders_visible_to(request.user), flags=flags, **criteria)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self) or []
        return paginator.get_paginated_response([order_json(order, flags) for order in page])


@extend_schema_serializer(component_name="OrderDetail")
class OrderDetailSerializer(OrderOutputSerializer):
    items = OrderItemSerializer(many=True)
    works = OrderWorkSerializer(many=True)
    photos = OrderPhotoSerializer(many=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)


class OrderDetailApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema_serializer(component_name="OrderUpdateInput")
    class UpdateSerializer(OrderFieldsInput):
        """A correction: any of the order's own fields, at least one."""

        mechanic_name = serializers.CharField(max_length=100, required=False)
        vin = serializers.CharField(max_length=17, required=False)
        car_number = serializers.CharField(
            max_length=20,
            required=False,
            allow_blank=True,
            help_text="Only while ENABLE_CAR_NUMBER is on (ignored while it is off).",
        )
        part_type = serializers.CharField(max_length=100, required=False)
        category = serializers.CharField(max_length=100, required=False)
        original_or_analog = serializers.ChoiceField(choices=PartOrigin.choices, required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs:
                raise serializers.ValidationError(gettext("Give at least one field to change."))
            return attrs

    @extend_schema(
        operation_id="order_detail",
        responses={200: OrderDetailSerializer},
        tags=["orders"],
        description="The order with its parts, labour, photos and `total` (parts' quantity x "
        "unit price plus labour, computed in Decimal). Its `ETag` header is the order's "
        "version, for `If-Match` on a correction.",
    )
    def get(self, request: Request, order_id: int) -> Response:
        no_parameters_check(request)
        order = visible_order(request, order_id)
        contents = order_contents(order)
        flags = request_flags(request)
        return Response(
            {
                **order_json(order, flags),
                "items": OrderItemSerializer(contents.items, many=True).data,
                "works": OrderWorkSerializer(contents.works, many=True).data,
                "photos": OrderPhotoSerializer(contents.photos, many=True).data,
                "total": str(contents.total),
            },
            headers={"ETag": order_etag(order, flags)},
        )

    @extend_schema(
        operation_id="order_update",
        request=UpdateSerializer,
        responses={200: OrderOutputSerializer},
        tags=["orders"],
        parameters=[
            OpenApiParameter(
                "If-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The `ETag` of the order as read: any change since is 412.",
            )
        ],
        description="Corrects an open order's own fields (staff: any order; a mechanic: their "
        "own, others are 404), checked as when it is made. A completed or cancelled order is "
        "409. What changes is one `order.updated` event with the old and new values. With "
        "`If-Match` (the `ETag` of `GET /api/orders/<id>`), an order changed since it was read "
        "is 412 and nothing is written.",
    )
    @idempotent
    def patch(self, request: Request, order_id: int) -> Response:
        flags = request_flags(request)
        order = order_update(
            order_id=order_id,
            user=signed_in(request),
            changes=order_input(self.UpdateSerializer(data=request.data), flags),
            flags=flags,
            if_match=request.headers.get("If-Match"),
        )
        return Response(order_json(order, flags), headers={"ETag": order_etag(order, flags)})


class OrderStatusApi(APIView):
    permission_classes = (IsMechanic,)
    partial_patch = False  # PATCH replaces the status: the field is required

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
    @idempotent
    def patch(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = order_status_change(
            order_id=order_id,
            status=serializer.validated_data["status"],
            mechanic=mechanic_from(request),
        )
        return Response(order_json(order, request_flags(request)))


class OrderStatusSetApi(APIView):
    """Staff move any order along the transitions (the admin's status buttons), the anonymous
    orders no mechanic has included."""

    permission_classes = (HandlesOrders,)
    partial_patch = False  # PATCH replaces the status: the field is required

    @extend_schema(
        operation_id="order_status_set",
        request=OrderStatusApi.InputSerializer,
        responses={200: OrderOutputSerializer},
        tags=["orders"],
        description="Any order (staff). An illegal move is 409 with `allowed` naming the "
        "statuses it may move to; the order's mechanic is told as when they move it.",
    )
    @idempotent
    def patch(self, request: Request, order_id: int) -> Response:
        serializer = OrderStatusApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = order_status_set(
            order_id=order_id,
            status=serializer.validated_data["status"],
            actor=signed_in(request),
        )
        return Response(order_json(order, request_flags(request)))


class OrderAssignApi(APIView):
    permission_classes = (HandlesOrders,)

    @extend_schema_serializer(component_name="OrderAssignInput")
    class InputSerializer(StrictInputSerializer):
        mechanic_id = IdField()
        notes = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        operation_id="order_assign",
        request=InputSerializer,
        responses={200: OrderOutputSerializer},
        tags=["orders"],
        description="Assign or reassign an order to an active mechanic (inactive: 409).",
    )
    @idempotent
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
    """An order's conversation: listed a page at a time, oldest first; anyone who sees the
    order adds to it."""

    permission_classes = (IsAuthenticated,)
    pagination_class = OrderPagination  # GET's pages, and the schema's

    @extend_schema_serializer(component_name="OrderCommentInput")
    class InputSerializer(StrictInputSerializer):
        text = serializers.CharField(max_length=2000)

    @extend_schema(
        operation_id="order_comments",
        parameters=[PagedQuery],
        responses={200: CommentSerializer(many=True)},
        tags=["orders"],
    )
    def get(self, request: Request, order_id: int) -> Response:
        PagedQuery(data=request.query_params).is_valid(raise_exception=True)
        order = visible_order(request, order_id)
        comments = order.comments.select_related("author").order_by("id")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(comments, request, view=self) or []
        return paginator.get_paginated_response(CommentSerializer(page, many=True).data)

    @extend_schema(
        operation_id="order_comment_add",
        request=InputSerializer,
        responses={201: CommentSerializer},
        tags=["orders"],
    )
    @idempotent
    def post(self, request: Request, order_id: int) -> Response:
        order = visible_order(request, order_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = comment_add(order=order, author=signed_in(request), **serializer.validated_data)
        return Response(CommentSerializer(comment).data, status=201)


class OrderStatsApi(APIView):
    """Staff's figures."""

    permission_classes = (HandlesOrders,)

    @extend_schema(
        operation_id="order_stats",
        responses={
            200: inline_serializer(
                "OrderStats",
                {
                    "total": serializers.IntegerField(),
                    "by_status": serializers.DictField(child=serializers.IntegerField()),
                    "created_today": serializers.IntegerField(),
                    "completed_today": serializers.IntegerField(),
                },
            )
        },
        tags=["orders"],
    )
    def get(self, request: Request) -> Response:
        no_parameters_check(request)
        return Response(order_stats())
