"""The workshop in the admin: orders (read, move along their statuses, assign, export), the
mechanics (create, deactivate, reset a password, link a Telegram chat) and the catalogue.
Every write calls orders.services (an event each, the halt and validation included)."""

import csv
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.models import User
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from conclave.admin_site import actor_of, error_text
from conclave.exceptions import DomainError, ValidationFailed
from conclave.serializers import whole_number
from flags.selectors import request_flags
from orders.models import (
    TRANSITIONS,
    Category,
    Comment,
    Language,
    MechanicProfile,
    Order,
    OrderItem,
    OrderPhoto,
    OrderStatus,
    OrderWork,
    Part,
    PartOrigin,
    TimeEntry,
)
from orders.selectors import order_contents, with_totals
from orders.services import (
    category_create,
    category_delete,
    category_update,
    comment_add,
    item_add,
    item_remove,
    mechanic_create,
    mechanic_create_check,
    mechanic_password_reset,
    mechanic_set_active,
    mechanic_telegram_link,
    order_assign,
    order_status_set,
    order_update,
    part_create,
    part_delete,
    part_update,
    work_add,
    work_remove,
)
from orders.services.catalog import category_fields_check, part_fields_check
from orders.services.items import MAX_ESTIMATED_MINUTES, MAX_QUANTITY
from orders.services.orders import ORDER_FIELDS


def _user(request: HttpRequest) -> User:
    """The signed-in staff member (the admin lets no one else this far)."""
    return cast(User, request.user)


class ShownOnly(admin.TabularInline):
    """An order's rows, shown on its page; changed only through the API's services."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ItemsInline(ShownOnly):
    model = OrderItem
    fields = readonly_fields = ("name", "part_number", "quantity", "unit_price")


class WorksInline(ShownOnly):
    model = OrderWork
    fields = readonly_fields = ("name", "description", "price", "estimated_minutes")


class PhotosInline(ShownOnly):
    model = OrderPhoto
    fields = readonly_fields = ("content_type", "width", "height", "size", "created_at", "open")

    @admin.display(description="photo")
    def open(self, photo: OrderPhoto) -> str:
        # Served by the API to staff and the order's mechanic only, never from a public path.
        url = f"/api/orders/{photo.order_id}/photos/{photo.pk}"
        return format_html('<a href="{}" target="_blank" rel="noopener">open</a>', url)


class CommentsInline(ShownOnly):
    model = Comment
    fields = readonly_fields = ("author", "text", "created_at")


class TimeInline(ShownOnly):
    model = TimeEntry
    fields = readonly_fields = ("mechanic", "started_at", "ended_at", "notes")


class CarNumberFilter(admin.SimpleListFilter):
    title = "car number"
    parameter_name = "car_number"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "With a car number"), ("no", "Without")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(car_number="")
        if self.value() == "no":
            return queryset.filter(car_number="")
        return queryset


CENTS = Decimal("0.01")
# New columns go last: a sheet that reads the columns by position keeps working.
EXPORT_COLUMNS = ("id", "created_at", "status", "vin", "car_number", "part_type", "category",
                  "original_or_analog", "mechanic_name", "mechanic", "total",
                  "completed_at")  # fmt: skip


class MechanicFilter(admin.RelatedFieldListFilter):
    """The orders' mechanic filter, each named with their username too (two mechanics may
    share a display name), in one query."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        mechanics = MechanicProfile.objects.select_related("user").order_by(
            "display_name", "user__username"
        )
        return [(m.pk, f"{m.display_name} ({m.user.username})") for m in mechanics]


class Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "vin", "part_type", "status", "mechanic", "created_at")
    list_select_related = ("mechanic",)
    search_fields = ("=id", "vin")
    date_hierarchy = None
    list_per_page = 50
    inlines = (ItemsInline, WorksInline, PhotosInline, CommentsInline, TimeInline)
    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    readonly_fields = ("mechanic_name", "vin", "car_number", "part_type", "category",
                       "original_or_analog", "part", "status", "mechanic", "created_by",
                       "created_at", "updated_at", "completed_at", "total")  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are made by mechanics (browser, bot) and API clients

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing on this page is edited in place: statuses and assignment have their own
        buttons, which call the services."""

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters: list[Any] = ["status", ("mechanic", MechanicFilter), "created_at"]
        if request_flags(request)["ENABLE_CAR_NUMBER"]:
            filters.append(CarNumberFilter)
        return filters

    def get_search_fields(self, request: HttpRequest) -> Any:
        if request_flags(request)["ENABLE_CAR_NUMBER"]:
            return (*self.search_fields, "car_number")
        return self.search_fields

    def get_list_display(self, request: HttpRequest) -> Any:
        if request_flags(request)["ENABLE_CAR_NUMBER"]:
            return (*self.list_display[:2], "car_number", *self.list_display[2:])
        return self.list_display

    @admin.display(description="total")
    def total(self, order: Order) -> str:
        return str(order_contents(order).total)

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        order = context.get("original")
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False,
            show_delete=False,
            transitions=[(s, OrderStatus(s).label) for s in TRANSITIONS[order.status]] if order else [],
            origins=PartOrigin.choices,
            car_numbers=request_flags(request)["ENABLE_CAR_NUMBER"],
            # What the correction form shows, sent back with it (correct_view).
            shown=[(name, getattr(order, name)) for name in _correctable(request)]
            if order else [],
            catalog_parts=Part.objects.select_related("category").order_by("sort_order", "id")
            if order and order.is_open and request_flags(request)["ENABLE_PART_CATEGORIES"] else [],
            lines=[(f"item:{i.pk}", f"{i.name} × {i.quantity}") for i in order.items.order_by("id")]
            + [(f"work:{w.pk}", f"{w.name} (labour)") for w in order.works.order_by("id")]
            if order and order.is_open else [],
            # Named with their username too: two mechanics may share a display name.
            mechanics=MechanicProfile.objects.filter(is_active=True).select_related("user")
            .order_by("display_name", "user__username"),
        )  # fmt: skip
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/status/", wrap(self.status_view), name="orders_order_status"),
            path("<int:pk>/assign/", wrap(self.assign_view), name="orders_order_assign"),
            path("<int:pk>/comment/", wrap(self.comment_view), name="orders_order_comment"),
            path("<int:pk>/correct/", wrap(self.correct_view), name="orders_order_correct"),
            path("<int:pk>/item/", wrap(self.item_view), name="orders_order_item"),
            path("<int:pk>/work/", wrap(self.work_view), name="orders_order_work"),
            path(
                "<int:pk>/remove-line/",
                wrap(self.remove_line_view),
                name="orders_order_remove_line",
            ),  # fmt: skip
            path("export.csv", wrap(self.export_view), name="orders_order_export"),
            *super().get_urls(),
        ]

    def _back(self, pk: int) -> HttpResponseRedirect:
        return redirect("admin:orders_order_change", pk)

    def status_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._changing(request)
        status = request.POST.get("status", "")
        if status == OrderStatus.CANCELLED and request.POST.get("confirmed") != "yes":
            # Final, with no way back: asked about first, as on the mechanic's page.
            order = get_object_or_404(Order, pk=pk)
            context = {**self.admin_site.each_context(request), "order": order,
                       "opts": self.opts, "title": f"Cancel order {order.pk}?"}  # fmt: skip
            return TemplateResponse(request, "admin/orders/order/cancel_confirm.html", context)
        try:
            order = order_status_set(order_id=pk, status=status, actor=_user(request))
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, f"Order {pk} is {order.get_status_display().lower()}.")
        return self._back(pk)

    def assign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._changing(request)
        mechanic_id = whole_number(request.POST.get("mechanic_id", ""))
        try:
            if mechanic_id is None:
                raise ValidationFailed({"mechanic_id": ["Choose a mechanic."]})
            order = order_assign(
                order_id=pk,
                mechanic_id=mechanic_id,
                notes=request.POST.get("notes", ""),
                actor=_user(request),
            )
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, f"Order {pk} is assigned to {order.mechanic}.")
        return self._back(pk)

    def comment_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Staff's comment on the order, which its mechanic reads on the order's page."""
        self._changing(request)
        order = get_object_or_404(Order, pk=pk)
        try:
            comment_add(order=order, author=_user(request), text=request.POST.get("text", ""))
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, "Your comment is on the order.")
        return self._back(pk)

    def _changing(self, request: HttpRequest) -> None:
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied

    def correct_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The order's own fields put right (a VIN typed wrong): the form sends them all with
        what its page showed (`shown_<field>`), and the ones edited there are corrected. A
        field left as shown is not sent on, so a correction made meanwhile by someone else
        stands; one both edited is refused, naming it and its value now."""
        self._changing(request)
        order = get_object_or_404(Order, pk=pk)
        names = _correctable(request)
        sent = {name: request.POST.get(name, "") for name in names}
        shown = {name: request.POST.get(f"shown_{name}", getattr(order, name)) for name in names}
        changed = {name: value for name, value in sent.items() if value != shown[name]}
        try:
            if not changed:
                raise ValidationFailed("Nothing to correct: the fields are as they were.")
            after = order_update(
                order_id=pk,
                user=_user(request),
                changes=changed,
                seen={name: shown[name] for name in changed},
            )
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            # Normalised (a VIN upper-cased) it may equal what was stored: then it is not told.
            corrected = [name for name in names if getattr(after, name) != getattr(order, name)]
            told = ", ".join(corrected) if corrected else "nothing changed"
            self.message_user(request, f"Order {pk} corrected: {told}.")
        return self._back(pk)

    def item_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A part on the order: the catalog's (its name, number and price) or one named with
        its price."""
        self._changing(request)
        data = request.POST
        part_id = whole_number(data.get("part_id", ""))
        quantity = whole_number(data.get("quantity", "").strip() or "1", most=MAX_QUANTITY)
        try:
            if quantity is None:
                raise ValidationFailed({"quantity": [f"A whole number from 1 to {MAX_QUANTITY}."]})
            if part_id:
                item = item_add(order_id=pk, user=_user(request), part_id=part_id,
                                quantity=quantity, flags=request_flags(request))  # fmt: skip
            else:
                item = item_add(
                    order_id=pk,
                    user=_user(request),
                    name=data.get("name", ""),
                    part_number=data.get("part_number", ""),
                    unit_price=data.get("unit_price", "").strip() or None,
                    quantity=quantity,
                )
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, f"{item.name} × {item.quantity} is on the order.")
        return self._back(pk)

    def work_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._changing(request)
        data = request.POST
        minutes_text = data.get("estimated_minutes", "").strip()
        minutes = whole_number(minutes_text, most=MAX_ESTIMATED_MINUTES) if minutes_text else None
        try:
            if minutes_text and minutes is None:
                raise ValidationFailed(
                    {"estimated_minutes": [f"A whole number from 1 to {MAX_ESTIMATED_MINUTES}."]}
                )
            price = data.get("price", "").strip()
            if not price:
                raise ValidationFailed({"price": ["Labour needs its price."]})
            work = work_add(
                order_id=pk,
                user=_user(request),
                name=data.get("name", ""),
                description=data.get("description", ""),
                price=price,
                estimated_minutes=minutes,
            )
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, f"{work.name} is on the order.")
        return self._back(pk)

    def remove_line_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A part or labour taken off the order (`line`: "item:<id>" or "work:<id>")."""
        self._changing(request)
        kind, _, number = request.POST.get("line", "").partition(":")
        line_id = whole_number(number)
        try:
            if line_id is None or kind not in ("item", "work"):
                raise ValidationFailed({"line": ["Choose a line of the order."]})
            model = OrderItem if kind == "item" else OrderWork
            name = model.objects.filter(order_id=pk, pk=line_id).values_list("name", flat=True)
            named = name.first() or "The line"  # read before it goes, for the message
            if kind == "item":
                item_remove(order_id=pk, item_id=line_id, user=_user(request))
            else:
                work_remove(order_id=pk, work_id=line_id, user=_user(request))
        except DomainError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, f"{named} is off the order.")
        return self._back(pk)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The changelist's filtered orders (its filters and search, every page) as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            orders = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters as exc:
            raise BadRequest("The list's filters do not read.") from exc
        writer = csv.writer(Echo())
        car_numbers = request_flags(request)["ENABLE_CAR_NUMBER"]

        def rows() -> Any:
            yield writer.writerow(EXPORT_COLUMNS)
            for order in with_totals(orders.select_related("mechanic")).iterator(chunk_size=2000):
                yield writer.writerow([
                    order.pk, order.created_at.isoformat(), order.status, order.vin,
                    _safe(order.car_number) if car_numbers else "", _safe(order.part_type),
                    _safe(order.category), order.original_or_analog,
                    _safe(order.mechanic_name), _safe(str(order.mechanic or "")),
                    cast(Any, order).total.quantize(CENTS),  # with_totals' (SQLite: 77.2000)
                    order.completed_at.isoformat() if order.completed_at else "",
                ])  # fmt: skip

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="orders.csv"'
        return response


def _correctable(request: HttpRequest) -> list[str]:
    """The order's fields its correction form shows: `car_number` only while its flag is on."""
    car_numbers = request_flags(request)["ENABLE_CAR_NUMBER"]
    return [name for name in ORDER_FIELDS if car_numbers or name != "car_number"]


def _safe(text: str) -> str:
    """Spreadsheet formula injection: a cell starting with =, +, - or @ is quoted as text."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


# --- Mechanics --------------------------------------------------------------------------------


class MechanicCreateForm(forms.ModelForm):
    """The service's refusals (a name or chat taken, a weak password) on the form's fields
    before it saves."""

    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    telegram_chat_id = forms.IntegerField(required=False, min_value=1)

    class Meta:
        model = MechanicProfile
        fields = ("display_name", "language")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                mechanic_create_check(
                    username=cleaned["username"],
                    password=cleaned["password"],
                    telegram_chat_id=cleaned.get("telegram_chat_id"),
                    language=cleaned.get("language") or Language.ENGLISH,
                    display_name=cleaned.get("display_name") or "",
                )
            except DomainError as exc:
                show_refusal(self, exc)
        return cleaned


class PasswordResetForm(forms.Form):
    new_password = forms.CharField(widget=forms.PasswordInput, strip=False)


class TelegramLinkForm(forms.Form):
    telegram_chat_id = forms.IntegerField(
        required=False, min_value=1, help_text="Empty unlinks the chat."
    )


@admin.register(MechanicProfile)
class MechanicProfileAdmin(admin.ModelAdmin):
    list_display = ("display_name", "username", "phone", "telegram_chat_id", "language",
                    "is_active")  # fmt: skip
    list_filter = ("is_active", "language")
    search_fields = ("display_name", "user__username", "phone")
    list_select_related = ("user",)
    actions = ("deactivate", "activate")
    change_form_template = "admin/orders/mechanicprofile/change_form.html"
    readonly_fields = ("display_name", "username", "phone", "telegram_chat_id", "language",
                       "is_active", "created_at")  # fmt: skip

    @admin.display(description="username", ordering="user__username")
    def username(self, mechanic: MechanicProfile) -> str:
        return mechanic.user.get_username()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: their orders and the log keep the account

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = MechanicCreateForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("username", "password", "display_name", "language", "telegram_chat_id")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return  # the profile is the mechanic's own (phone, language): nothing to save here
        data = form.cleaned_data
        profile = mechanic_create(
            username=data["username"],
            password=data["password"],
            display_name=data.get("display_name") or "",
            telegram_chat_id=data.get("telegram_chat_id"),
            language=data.get("language") or Language.ENGLISH,
            actor=actor_of(request),
        )
        obj.pk, obj.user_id, obj._state.adding = profile.pk, profile.user_id, False

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        if context.get("original") is not None:
            context.update(show_save=False, show_save_and_continue=False,
                           show_save_and_add_another=False, show_delete=False)  # fmt: skip
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.action(description="Deactivate the selected mechanics", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[MechanicProfile]) -> None:
        for mechanic in queryset.select_related("user"):
            mechanic_set_active(mechanic=mechanic, active=False, actor=_user(request))
        self.message_user(request, f"{queryset.count()} mechanic(s) deactivated.")

    @admin.action(description="Activate the selected mechanics", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[MechanicProfile]) -> None:
        for mechanic in queryset.select_related("user"):
            mechanic_set_active(mechanic=mechanic, active=True, actor=_user(request))
        self.message_user(request, f"{queryset.count()} mechanic(s) activated.")

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/password/", wrap(self.password_view),
                 name="orders_mechanicprofile_password"),
            path("<int:pk>/telegram/", wrap(self.telegram_view),
                 name="orders_mechanicprofile_telegram"),
            *super().get_urls(),
        ]  # fmt: skip

    def _mechanic_form(
        self,
        request: HttpRequest,
        pk: int,
        form_class: type[forms.Form],
        *,
        title: str,
        apply: Callable[[MechanicProfile, dict[str, Any]], Any],
        done: str,
    ) -> HttpResponse:
        """A one-form page about a mechanic: the form, then the service; a refusal is shown
        on the form's field."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        mechanic = get_object_or_404(MechanicProfile.objects.select_related("user"), pk=pk)
        initial = {name: getattr(mechanic, name, None) for name in form_class.base_fields}
        form = form_class(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                apply(mechanic, form.cleaned_data)
            except DomainError as exc:
                form.add_error(next(iter(form.fields)), error_text(exc))
            else:
                self.message_user(request, done.format(mechanic=mechanic))
                return redirect("admin:orders_mechanicprofile_change", pk)
        context = {**self.admin_site.each_context(request), "title": title.format(mechanic=mechanic),
                   "form": form, "mechanic": mechanic, "opts": self.opts}  # fmt: skip
        return TemplateResponse(request, "admin/orders/mechanicprofile/form.html", context)

    def password_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._mechanic_form(
            request, pk, PasswordResetForm,
            title="Reset {mechanic}'s password",
            apply=lambda mechanic, data: mechanic_password_reset(
                mechanic=mechanic, new_password=data["new_password"], actor=_user(request)
            ),
            done="{mechanic}'s password is reset; they are signed out.",
        )  # fmt: skip

    def telegram_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._mechanic_form(
            request, pk, TelegramLinkForm,
            title="Link {mechanic}'s Telegram chat",
            apply=lambda mechanic, data: mechanic_telegram_link(
                mechanic=mechanic, chat_id=data["telegram_chat_id"], actor=_user(request)
            ),
            done="{mechanic}'s Telegram chat is saved.",
        )  # fmt: skip


# --- The catalogue ----------------------------------------------------------------------------


def show_refusal(form: forms.BaseForm, refusal: DomainError) -> None:
    """A service's refusal on the form: each field it names on that field (`category_id` on
    `category`), anything else above the form."""
    detail = refusal.detail if isinstance(refusal.detail, dict) else {None: [refusal.detail]}
    for field, problems in detail.items():
        name = "category" if field == "category_id" else field
        form.add_error(name if name in form.fields else None, problems)


class ServiceForm(forms.ModelForm):
    """A form whose rules are the service's: its refusals become the form's errors. Only the
    fields edited on the page go to the service: each field carries what the page showed
    (Django's hidden initial value), so one left as it was does not put back a value someone
    else saved meanwhile."""

    rules: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.show_hidden_initial = True

    def service_fields(self) -> dict[str, Any]:
        fields = {name: self.cleaned_data[name] for name in self.changed_data
                  if name in self.cleaned_data}  # fmt: skip
        if "category" in fields:
            category = fields.pop("category")
            fields["category_id"] = category.pk if category else None
        return fields

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                type(self).rules(self.service_fields(), self.instance.pk)
            except DomainError as exc:  # invalid (400), or a name another has (409)
                show_refusal(self, exc)
        return cleaned


class CategoryForm(ServiceForm):
    rules = staticmethod(category_fields_check)

    class Meta:
        model = Category
        fields = ("name_en", "name_he", "name_ru", "icon", "sort_order")


class PartForm(ServiceForm):
    rules = staticmethod(part_fields_check)

    class Meta:
        model = Part
        fields = ("category", "name_en", "name_he", "name_ru", "part_number", "price",
                  "is_common", "sort_order")  # fmt: skip


class CatalogAdmin(admin.ModelAdmin):
    create: Any = None
    update: Any = None
    remove: Any = None
    id_name = ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = form.service_fields()
        if change:
            type(self).update(**{self.id_name: obj.pk}, actor=request.user, **fields)
        else:
            created = type(self).create(actor=request.user, **fields)
            obj.pk, obj._state.adding = created.pk, False

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        pk = whole_number(object_id)
        if request.method == "POST" and pk is not None:
            if not self.has_delete_permission(request):
                raise PermissionDenied
            try:
                type(self).remove(**{self.id_name: pk}, actor=request.user)
            except DomainError as exc:
                self.message_user(request, error_text(exc), messages.ERROR)
                return redirect(reverse(f"admin:orders_{self.opts.model_name}_change",
                                        args=[object_id]))  # fmt: skip
            self.message_user(request, f"{self.opts.verbose_name} {object_id} deleted.")
            return redirect(f"admin:orders_{self.opts.model_name}_changelist")
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletes go one by one through the service
        return actions


@admin.register(Category)
class CategoryAdmin(CatalogAdmin):
    form = CategoryForm
    list_display = ("name_en", "name_he", "name_ru", "icon", "sort_order")
    list_editable = ()
    search_fields = ("name_en", "name_he", "name_ru")
    create, update, remove = (staticmethod(category_create), staticmethod(category_update),
                              staticmethod(category_delete))  # fmt: skip
    id_name = "category_id"


@admin.register(Part)
class PartAdmin(CatalogAdmin):
    form = PartForm
    list_display = ("name_en", "category", "part_number", "price", "is_common", "sort_order")
    list_filter = ("category", "is_common")
    list_select_related = ("category",)
    search_fields = ("name_en", "name_he", "name_ru", "part_number")
    create, update, remove = (staticmethod(part_create), staticmethod(part_update),
                              staticmethod(part_delete))  # fmt: skip
    id_name = "part_id"
