"""Parts, labour and photos on an order. Staff change any open order, a mechanic their own;
a completed or cancelled order is final (409)."""

import structlog
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave.exceptions import NotFound
from conclave.idempotency import idempotent
from conclave.serializers import IdField, StrictInputSerializer
from flags.selectors import request_flags
from orders.apis.common import no_parameters_check, signed_in, visible_order
from orders.models import OrderPhoto
from orders.services import (
    item_add,
    item_remove,
    photo_add,
    photo_remove,
    work_add,
    work_remove,
)

logger = structlog.get_logger(__name__)


@extend_schema_serializer(component_name="OrderItem")
class OrderItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    part_id = serializers.IntegerField(allow_null=True, help_text="Empty for a custom part.")
    name = serializers.CharField()
    part_number = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    is_custom = serializers.BooleanField()
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="OrderWork")
class OrderWorkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    estimated_minutes = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="OrderPhoto")
class OrderPhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_url(self, photo: OrderPhoto) -> str:
        return f"/api/orders/{photo.order_id}/photos/{photo.pk}"


class OrderItemsApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema_serializer(component_name="OrderItemInput")
    class InputSerializer(StrictInputSerializer):
        part_id = IdField(
            required=False, help_text="A catalog part (needs ENABLE_PART_CATEGORIES)."
        )
        name = serializers.CharField(max_length=200, required=False, help_text="A custom part.")
        part_number = serializers.CharField(max_length=64, required=False, allow_blank=True)
        quantity = serializers.IntegerField(min_value=1, max_value=999, default=1)
        unit_price = serializers.DecimalField(
            max_digits=10, decimal_places=2, min_value=0, required=False
        )

    @extend_schema(
        operation_id="order_items", responses={200: OrderItemSerializer(many=True)}, tags=["orders"]
    )
    def get(self, request: Request, order_id: int) -> Response:
        no_parameters_check(request)
        order = visible_order(request, order_id)
        return Response(OrderItemSerializer(order.items.order_by("id"), many=True).data)

    @extend_schema(
        operation_id="order_item_add",
        request=InputSerializer,
        responses={201: OrderItemSerializer},
        tags=["orders"],
        description="A catalog part (`part_id`; its name, number and price are copied) or a "
        "custom part (`name` and `unit_price`). 409 on a completed or cancelled order.",
    )
    @idempotent
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = item_add(
            order_id=order_id,
            user=signed_in(request),
            flags=request_flags(request),
            **serializer.validated_data,
        )
        return Response(OrderItemSerializer(item).data, status=201)


class OrderItemApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(operation_id="order_item_remove", responses={204: None}, tags=["orders"])
    @idempotent
    def delete(self, request: Request, order_id: int, item_id: int) -> Response:
        item_remove(order_id=order_id, item_id=item_id, user=signed_in(request))
        return Response(status=204)


class OrderWorksApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema_serializer(component_name="OrderWorkInput")
    class InputSerializer(StrictInputSerializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
        estimated_minutes = serializers.IntegerField(
            min_value=1, max_value=43200, required=False, allow_null=True
        )

    @extend_schema(
        operation_id="order_works", responses={200: OrderWorkSerializer(many=True)}, tags=["orders"]
    )
    def get(self, request: Request, order_id: int) -> Response:
        no_parameters_check(request)
        order = visible_order(request, order_id)
        return Response(OrderWorkSerializer(order.works.order_by("id"), many=True).data)

    @extend_schema(
        operation_id="order_work_add",
        request=InputSerializer,
        responses={201: OrderWorkSerializer},
        tags=["orders"],
        description="Labour with its price. 409 on a completed or cancelled order.",
    )
    @idempotent
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        work = work_add(order_id=order_id, user=signed_in(request), **serializer.validated_data)
        return Response(OrderWorkSerializer(work).data, status=201)


class OrderWorkApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(operation_id="order_work_remove", responses={204: None}, tags=["orders"])
    @idempotent
    def delete(self, request: Request, order_id: int, work_id: int) -> Response:
        work_remove(order_id=order_id, work_id=work_id, user=signed_in(request))
        return Response(status=204)


class OrderPhotosApi(APIView):
    permission_classes = (IsAuthenticated,)
    parser_classes = (MultiPartParser,)

    @extend_schema_serializer(component_name="OrderPhotoInput")
    class InputSerializer(StrictInputSerializer):
        photo = serializers.FileField(help_text="A JPEG, PNG or WebP image.")

    @extend_schema(
        operation_id="order_photos",
        responses={200: OrderPhotoSerializer(many=True)},
        tags=["orders"],
    )
    def get(self, request: Request, order_id: int) -> Response:
        no_parameters_check(request)
        order = visible_order(request, order_id)
        return Response(OrderPhotoSerializer(order.photos.order_by("id"), many=True).data)

    @extend_schema(
        operation_id="order_photo_add",
        request={"multipart/form-data": InputSerializer},
        responses={201: OrderPhotoSerializer},
        tags=["orders"],
        description="The bytes must be a JPEG, PNG or WebP image (ORDER_PHOTO_MAX_BYTES at most).",
    )
    @idempotent
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        photo = photo_add(
            order_id=order_id,
            user=signed_in(request),
            upload=serializer.validated_data["photo"],
        )
        return Response(OrderPhotoSerializer(photo).data, status=201)


class OrderPhotoApi(APIView):
    """A photo's bytes, only to those who may see the order; its removal, by those who may
    change it."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="order_photo",
        responses={
            (200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The image.")
        },
        tags=["orders"],
    )
    def get(self, request: Request, order_id: int, photo_id: int) -> FileResponse:
        no_parameters_check(request)
        order = visible_order(request, order_id)
        photo = order.photos.filter(pk=photo_id).first()
        if photo is None:
            raise NotFound(f"No photo {photo_id} on order {order_id}.")
        extension = photo.content_type.split("/")[1].replace("jpeg", "jpg")
        try:
            content = photo.file.open("rb")
        except FileNotFoundError:
            # The row outlived its file (media not restored, deleted by hand): the operators
            # must hear of it; the caller gets a clear answer.
            logger.error("photo_file_missing", photo_id=photo.pk, name=photo.file.name)
            raise NotFound(f"The file of photo {photo.pk} is missing from the storage.") from None
        response = FileResponse(
            content,
            content_type=photo.content_type,
            filename=f"order-{order_id}-photo-{photo.pk}.{extension}",
        )
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @extend_schema(
        operation_id="order_photo_remove",
        responses={204: None},
        tags=["orders"],
        description="Takes the photo off the order and deletes its file. 409 on a completed "
        "or cancelled order.",
    )
    @idempotent
    def delete(self, request: Request, order_id: int, photo_id: int) -> Response:
        photo_remove(order_id=order_id, photo_id=photo_id, user=signed_in(request))
        return Response(status=204)
