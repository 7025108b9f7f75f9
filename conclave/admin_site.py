"""The staff admin's site: Django's admin with the halt shown on every page, a dashboard as
its index, and the halt pages (state, raise, the keepers' clearing ceremony).

Every write here calls the same services as the API, so the admin cannot bypass the event log,
the halt, validation or the flag pins; every view checks its permission server-side.
"""

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.filters import FieldListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from conclave.exceptions import DomainError
from conclave.halt import halt_status
from conclave.models import HaltChannel
from conclave.selectors import admin_dashboard, halt_ceremony_view, halt_state
from conclave.services import ceremony_approve, ceremony_open, halt_clear, halt_raise
from conclave.throttling import PasswordChangeThrottle, SignInFormThrottle
from events.services import actor_of as event_actor
from orders.selectors import EARLIEST_DAY, LATEST_DAY


def actor_of(request: HttpRequest) -> str:
    return event_actor(request.user)


def error_text(error: DomainError) -> str:
    return error.text()


class DateListFilter(admin.DateFieldListFilter):
    """Django's date filter (today, the past 7 days, this month, this year), its bounds
    (`<field>__gte`, `<field>__lt`) read as a form reads a date or time: one without an
    offset is in the page's time zone, and it must fall from EARLIEST_DAY to LATEST_DAY.
    Django hands a bound typed in the URL to the database as it is (year 1 in a zone east
    of UTC overflows SQLite's conversion to UTC); one that does not read is refused as
    Django refuses a malformed one."""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        is_time = isinstance(self.field, models.DateTimeField)
        reader = forms.DateTimeField() if is_time else forms.DateField()
        given = {self.lookup_kwarg_since, self.lookup_kwarg_until} & set(self.used_parameters)
        try:
            for name in given:
                values = cast(list[str], self.used_parameters[name])  # the URL's, as typed
                bounds = [reader.clean(value) for value in values]
                days = [bound.date() if is_time else bound for bound in bounds]
                if not all(EARLIEST_DAY <= day <= LATEST_DAY for day in days):
                    raise ValidationError(f"{name}: a day from {EARLIEST_DAY} to {LATEST_DAY}.")
                self.used_parameters[name] = bounds
        except ValidationError as exc:
            raise IncorrectLookupParameters(exc) from exc
        return super().queryset(request, queryset)


# Date fields named in `list_filter` (Django's and DRF's admins too) get DateListFilter.
FieldListFilter.register(
    lambda field: isinstance(field, models.DateField), DateListFilter, take_priority=True
)


class ShownFiltersChangeList(ChangeList):
    """A changelist that filters by what its page offers (list filters, search, the date
    hierarchy, and the admin's own `url_lookups`) and refuses any other lookup in the URL.

    Django's admin applies any lookup on the model's own fields from the query string
    (`?created_at__year=99999`, `?vin__regex=(`, `?id__range=1`); their values reach the
    database unchecked, and many are server errors there. Refused here with 400, as Django
    refuses lookups across relations it does not know.
    """

    def get_filters(self, request: HttpRequest) -> Any:
        specs, has_filters, remaining, duplicates, active = super().get_filters(request)
        read = set(getattr(self.model_admin, "url_lookups", ()))
        if self.date_hierarchy and f"{self.date_hierarchy}__year" in self.params:
            read |= {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"}
        unread = sorted(set(remaining) - read)
        if unread:
            raise DisallowedModelAdminLookup(f"Filtering by {', '.join(unread)} not allowed")
        return specs, has_filters, remaining, duplicates, active


class StrictChangelistAdmin:
    """Mixed into every model admin the site registers (see ConclaveAdminSite.register): the
    changelist reads only the filters its page offers (ShownFiltersChangeList; a model admin
    names the lookups its own page puts in the URL in `url_lookups`), and an action only ids
    that are ids."""

    model: type[models.Model]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ShownFiltersChangeList

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> Any:
        """Django filters by the selected ids as posted: one that is not an id (`abc`, a
        number past the column's range) fails in the database. Refused with 400."""
        key = cast(models.Field, self.model._meta.pk)
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                key.clean(value, None)
        except ValidationError as exc:
            raise BadRequest("A selected item's id is not one.") from exc
        return super().response_action(request, queryset)  # type: ignore[misc]


class AdminLoginThrottle(SignInFormThrottle):
    """The admin's sign-in page (staff, keepers, security admins)."""

    form = "admin"


class ConclaveAdminSite(admin.AdminSite):
    site_header = "Conclave Hub"
    site_title = "Conclave Hub admin"
    index_title = "Dashboard"
    index_template = "admin/conclave/index.html"

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every model admin here, Django's own (users, groups, tokens) among them, checks
        what its changelist's URL and actions ask (StrictChangelistAdmin)."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, StrictChangelistAdmin):
            admin_class = type(
                admin_class.__name__,
                (StrictChangelistAdmin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        status = halt_status()
        user = request.user
        context.update(
            halted=status.halted,
            halt_reason=status.reason or "",
            can_see_halt=user.is_active and user.has_perm("conclave.view_haltstate"),
        )
        return context

    def get_urls(self) -> list[URLPattern | URLResolver]:
        own = [
            path("halt/", self.admin_view(self.halt_view), name="halt"),
            path("halt/ceremony/", self.admin_view(self.ceremony_view), name="halt-ceremony"),
        ]
        return own + super().get_urls()

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Django's sign-in page, its attempts limited by address as the mechanics' are: 429
        with a page saying how long to wait, and a success clears the count."""
        if request.method != "POST":
            return super().login(request, extra_context)
        throttle = AdminLoginThrottle()
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            return self._throttled(
                request, throttle, "Too many sign-in attempts from this address."
            )
        response = super().login(request, extra_context)
        signed_in = response.status_code == 302 and request.user.is_authenticated
        if signed_in and getattr(throttle, "key", None):
            throttle.cache.delete(throttle.key)  # (no key while the throttle is switched off)
        return response

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        """Django's page, its tries of the old password counted per user as the mechanics'
        profile page counts them."""
        throttle = PasswordChangeThrottle()
        if request.method == "POST" and not throttle.allow_request(request, None):  # type: ignore[arg-type]
            return self._throttled(request, throttle, "Too many tries of the current password.")
        return super().password_change(request, extra_context)

    def _throttled(
        self, request: HttpRequest, throttle: SignInFormThrottle, refusal: str
    ) -> TemplateResponse:
        """429 with a page saying what was refused and how long to wait."""
        wait = throttle.wait_seconds()
        context = {
            **self.each_context(request), "title": "Too many attempts", "refusal": refusal,
            "wait": wait,
        }  # fmt: skip
        response = TemplateResponse(request, "admin/conclave/throttled.html", context, status=429)
        response["Retry-After"] = str(wait)
        return response

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        figures = admin_dashboard(request.user)
        return super().index(request, {**figures, **(extra_context or {})})

    # --- The halt ---------------------------------------------------------------------------

    def halt_view(self, request: HttpRequest) -> HttpResponse:
        """The halt's state; security admins raise it with a reason, after a confirmation."""
        user = request.user
        if not user.has_perm("conclave.view_haltstate"):
            raise PermissionDenied
        can_raise = user.has_perm("conclave.change_haltstate")
        reason = request.POST.get("reason", "").strip() if request.method == "POST" else ""
        if request.method == "POST":
            if not can_raise:
                raise PermissionDenied
            if request.POST.get("confirmed") == "yes":
                try:
                    _state, raised = halt_raise(
                        reason=reason, actor=actor_of(request), channel=HaltChannel.ADMIN
                    )
                except DomainError as exc:
                    messages.error(request, error_text(exc))
                else:
                    if raised:
                        messages.warning(request, "The system is halted. Every write is refused.")
                    else:
                        messages.info(request, "The system was halted already.")
                    return redirect("admin:halt")
            elif reason:
                context = {**self.each_context(request), "title": "Raise the halt?",
                           "reason": reason}  # fmt: skip
                return TemplateResponse(request, "admin/conclave/halt_confirm.html", context)
            else:
                messages.error(request, "Give the reason for the halt.")
        context = {
            **self.each_context(request),
            "title": "Halt",
            "state": halt_state(),
            "can_raise": can_raise,
        }
        return TemplateResponse(request, "admin/conclave/halt.html", context)

    def ceremony_view(self, request: HttpRequest) -> HttpResponse:
        """The clearing ceremony: the challenge, the quorum, the approvals so far; keepers paste
        the signature `manage.py keeper_sign` made; the clear runs verification and says how
        it went. (Allowed while halted: HaltMiddleware lets this page's posts through.)"""
        user = request.user
        if not user.has_perm("conclave.view_haltceremony"):
            raise PermissionDenied
        can_approve = user.has_perm("conclave.add_ceremonyapproval")
        can_clear = can_approve or user.has_perm("conclave.change_haltstate")
        if request.method == "POST":
            return self._ceremony_post(request, can_approve=can_approve, can_clear=can_clear)
        context: dict[str, Any] = {**self.each_context(request), "title": "Clearing ceremony"}
        if halt_status().halted or halt_state().is_halted:
            try:
                ceremony = ceremony_open(actor=actor_of(request))
            except DomainError as exc:
                context["problem"] = error_text(exc)
            else:
                context["ceremony"] = halt_ceremony_view(ceremony)
        context.update(can_approve=can_approve, can_clear=can_clear)
        return TemplateResponse(request, "admin/conclave/ceremony.html", context)

    def _ceremony_post(
        self, request: HttpRequest, *, can_approve: bool, can_clear: bool
    ) -> HttpResponse:
        action = request.POST.get("action")
        try:
            if action == "approve":
                if not can_approve:
                    raise PermissionDenied
                approval = ceremony_approve(
                    keeper_key_id=request.POST.get("keeper_key_id", "").strip()[:100],
                    signature=request.POST.get("signature", "").strip()[:200],
                    actor=actor_of(request),
                )
                messages.success(request, f"Approval by {approval.keeper_id} recorded.")
            elif action == "clear":
                if not can_clear:
                    raise PermissionDenied
                halt_clear(actor=actor_of(request))
                messages.success(
                    request, "Verification passed and the quorum approved: the halt is cleared."
                )
                return redirect("admin:halt")
            else:
                messages.error(request, "Unknown action.")
        except DomainError as exc:
            messages.error(request, error_text(exc))
        return redirect("admin:halt-ceremony")
