"""The parts catalog: read in the caller's language while ENABLE_PART_CATEGORIES is on, and
managed by staff."""

from typing import Any

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave.exceptions import FeatureDisabled
from conclave.idempotency import idempotent
from conclave.openapi import ErrorSerializer
from conclave.serializers import IdField, StrictInputSerializer
from flags.selectors import request_flags
from orders.apis.common import signed_in
from orders.models import Language
from orders.selectors import categories, mechanic_of, parts
from orders.services import (
    categories_reorder,
    category_create,
    category_delete,
    category_update,
    part_create,
    part_delete,
    part_update,
)


class CatalogQuerySerializer(StrictInputSerializer):
    lang = serializers.ChoiceField(choices=Language.choices, required=False)


class PartQuerySerializer(CatalogQuerySerializer):
    category_id = IdField(required=False)


def _language(request: Request, asked: str | None) -> str:
    wanted = asked or (mechanic.language if (mechanic := mechanic_of(request.user)) else "")
    if not wanted:
        wanted = (request.headers.get("Accept-Language") or "en")[:2].lower()
    return wanted if wanted in Language.values else Language.ENGLISH


CATALOG_CLOSED = OpenApiResponse(
    ErrorSerializer, description="`feature_disabled` while ENABLE_PART_CATEGORIES is off."
)


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
        parameters=[CatalogQuerySerializer],
        responses={200: CategorySerializer(many=True), 404: CATALOG_CLOSED},
        tags=["catalog"],
    )
    def get(self, request: Request) -> Response:
        _catalog_open(request)
        query = CatalogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        language = _language(request, query.validated_data.get("lang"))
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
        parameters=[PartQuerySerializer],
        responses={200: PartSerializer(many=True), 404: CATALOG_CLOSED},
        tags=["catalog"],
    )
    def get(self, request: Request) -> Response:
        _catalog_open(request)
        query = PartQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        language = _language(request, query.validated_data.get("lang"))
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
                for p in parts(category_id=query.validated_data.get("category_id"))
            ]
        )


class CanManageCatalog(BasePermission):
    """Staff holding the catalog's model permission for the method: add (POST), change
    (PATCH, and the reorder POST) or delete (DELETE). A method the view lacks passes here so
    that staff learn it is not allowed (405) rather than not permitted."""

    ACTIONS = {"POST": "add", "PATCH": "change", "PUT": "change", "DELETE": "delete"}

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user.is_authenticated and user.is_staff):
            return False
        if not hasattr(view, (request.method or "").lower()):
            return True  # the view answers 405, naming the methods it has
        action = getattr(view, "catalog_action", None) or self.ACTIONS.get(request.method or "")
        model = getattr(view, "catalog_model", "")
        return action is not None and user.has_perm(f"orders.{action}_{model}")


@extend_schema_serializer(component_name="CategoryAdmin")
class CategoryAdminSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name_en = serializers.CharField()
    name_he = serializers.CharField()
    name_ru = serializers.CharField()
    icon = serializers.CharField()
    sort_order = serializers.IntegerField()


@extend_schema_serializer(component_name="PartAdmin")
class PartAdminSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    category_id = serializers.IntegerField()
    name_en = serializers.CharField()
    name_he = serializers.CharField()
    name_ru = serializers.CharField()
    part_number = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    is_common = serializers.BooleanField()
    sort_order = serializers.IntegerField()


@extend_schema_serializer(component_name="CategoryInput")
class CategoryInputSerializer(StrictInputSerializer):
    name_en = serializers.CharField(max_length=100)
    name_he = serializers.CharField(max_length=100, required=False, allow_blank=True)
    name_ru = serializers.CharField(max_length=100, required=False, allow_blank=True)
    icon = serializers.CharField(max_length=32, required=False, allow_blank=True)
    sort_order = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)


@extend_schema_serializer(component_name="PartInput")
class PartInputSerializer(StrictInputSerializer):
    category_id = IdField()
    name_en = serializers.CharField(max_length=200)
    name_he = serializers.CharField(max_length=200, required=False, allow_blank=True)
    name_ru = serializers.CharField(max_length=200, required=False, allow_blank=True)
    part_number = serializers.CharField(max_length=64, required=False, allow_blank=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    is_common = serializers.BooleanField(required=False)
    sort_order = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)


def _valid(serializer_class: type[serializers.Serializer], request: Request, **kwargs: Any) -> Any:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CategoryCreateApi(APIView):
    permission_classes = (CanManageCatalog,)
    catalog_model = "category"

    @extend_schema(
        operation_id="category_create",
        request=CategoryInputSerializer,
        responses={201: CategoryAdminSerializer},
        tags=["catalog"],
        description="Staff; without `sort_order` the category goes last.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        fields = _valid(CategoryInputSerializer, request)
        category = category_create(actor=signed_in(request), **fields)
        return Response(CategoryAdminSerializer(category).data, status=201)


class CategoryApi(APIView):
    permission_classes = (CanManageCatalog,)
    catalog_model = "category"

    @extend_schema(
        operation_id="category_update",
        request=CategoryInputSerializer(partial=True),
        responses={200: CategoryAdminSerializer},
        tags=["catalog"],
    )
    @idempotent
    def patch(self, request: Request, category_id: int) -> Response:
        fields = _valid(CategoryInputSerializer, request, partial=True)
        category = category_update(category_id=category_id, actor=signed_in(request), **fields)
        return Response(CategoryAdminSerializer(category).data)

    @extend_schema(
        operation_id="category_delete",
        responses={204: None},
        tags=["catalog"],
        description="Deletes the category and its parts; 409 while an order uses one of them.",
    )
    @idempotent
    def delete(self, request: Request, category_id: int) -> Response:
        category_delete(category_id=category_id, actor=signed_in(request))
        return Response(status=204)


class CategoriesReorderApi(APIView):
    permission_classes = (CanManageCatalog,)
    catalog_model = "category"
    catalog_action = "change"

    @extend_schema_serializer(component_name="CategoriesReorderInput")
    class InputSerializer(StrictInputSerializer):
        ids = serializers.ListField(child=IdField(), max_length=10_000, allow_empty=False)

    @extend_schema(
        operation_id="categories_reorder",
        request=InputSerializer,
        responses={200: CategoryAdminSerializer(many=True)},
        tags=["catalog"],
        description="`ids` names every category once, in the order they are to be shown.",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        ids = _valid(self.InputSerializer, request)["ids"]
        ordered = categories_reorder(ids=ids, actor=signed_in(request))
        return Response(CategoryAdminSerializer(ordered, many=True).data)


class PartCreateApi(APIView):
    permission_classes = (CanManageCatalog,)
    catalog_model = "part"

    @extend_schema(
        operation_id="part_create",
        request=PartInputSerializer,
        responses={201: PartAdminSerializer},
        tags=["catalog"],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        part = part_create(actor=signed_in(request), **_valid(PartInputSerializer, request))
        return Response(PartAdminSerializer(part).data, status=201)


class PartApi(APIView):
    permission_classes = (CanManageCatalog,)
    catalog_model = "part"

    @extend_schema(
        operation_id="part_update",
        request=PartInputSerializer(partial=True),
        responses={200: PartAdminSerializer},
        tags=["catalog"],
        description="Orders already made keep the name and price they were made with.",
    )
    @idempotent
    def patch(self, request: Request, part_id: int) -> Response:
        fields = _valid(PartInputSerializer, request, partial=True)
        part = part_update(part_id=part_id, actor=signed_in(request), **fields)
        return Response(PartAdminSerializer(part).data)

    @extend_schema(
        operation_id="part_delete",
        responses={204: None},
        tags=["catalog"],
        description="409 while an order uses the part.",
    )
    @idempotent
    def delete(self, request: Request, part_id: int) -> Response:
        part_delete(part_id=part_id, actor=signed_in(request))
        return Response(status=204)
