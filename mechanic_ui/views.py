"""The mechanic's browser UI: server-rendered pages over the same selectors and services as the
API. Signed in with Django's session (HttpOnly cookie, CSRF); the pages' JavaScript calls the
REST API with that session (mechanic_ui/static/mechanic/api.js).
"""

import uuid
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, gettext_lazy, gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from conclave import idempotency
from conclave.exceptions import DomainError, FeatureDisabled, Halted, ValidationFailed
from conclave.idempotency import IdempotencyKeyReused
from conclave.serializers import whole_number
from conclave.throttling import PasswordChangeThrottle, SignInFormThrottle
from flags.selectors import request_flags
from orders.models import TRANSITIONS, MechanicProfile, OrderStatus, PartOrigin, TimeEntry
from orders.selectors import (
    PERIODS,
    categories,
    mechanic_of,
    mechanic_stats,
    order_comments_latest,
    order_contents,
    orders_filtered,
    parts,
    time_history,
    time_period,
)
from orders.services import mechanic_password_change, mechanic_update, order_place
from orders.services.items import ORDER_LINES_MAX_COUNT
from orders.services.login_links import LoginLinkInvalid, login_link_redeem

PAGE_SIZE = 20
# An order's page shows its latest comments (`?comments=all`: every one).
ORDER_PAGE_COMMENTS = 50
# The dashboard's filters: the URL's `status` and what it shows.
FILTERS = {
    "all": None,
    "new": OrderStatus.NEW,
    "in_progress": OrderStatus.IN_PROGRESS,
    "ready": OrderStatus.READY,
    "completed": OrderStatus.COMPLETED,
}


def _photo_limit() -> dict[str, int]:
    """The photo fields' size limit, checked as the photo is chosen: a bigger one would be
    refused whole (413), with everything typed, after its upload."""
    return {
        "photo_max_bytes": settings.ORDER_PHOTO_MAX_BYTES,
        "photo_max_mib": settings.ORDER_PHOTO_MAX_BYTES // (1024 * 1024),
        "photo_max_count": settings.ORDER_PHOTO_MAX_COUNT,
    }


class LoginFormThrottle(SignInFormThrottle):
    """The mechanics' sign-in page."""

    form = "mechanic"


# The sign-in page's words (its template says them too).
THROTTLED_MESSAGE = gettext_noop("Too many attempts. Try again in %(wait)s seconds.")


def mechanic_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in, active mechanics only; anyone else goes to the login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mechanic = mechanic_of(request.user) if request.user.is_authenticated else None
        if mechanic is None:
            return redirect(f"{reverse('mechanic:login')}?next={request.get_full_path()}")
        request.mechanic = mechanic  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


def _mechanic(request: HttpRequest) -> MechanicProfile:
    return request.mechanic  # type: ignore[attr-defined]


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = ""
    context: dict[str, Any] = {"next": next_url, "username": ""}
    if request.method == "POST":
        throttle = LoginFormThrottle()
        username = request.POST.get("username", "")[:150]
        context["username"] = username
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            context["error"] = "throttled"
            context["wait"] = throttle.wait_seconds()
            response = render(request, "mechanic/login.html", context, status=429)
            response["Retry-After"] = str(context["wait"])
            return response
        user = authenticate(request, username=username, password=request.POST.get("password", ""))
        mechanic = mechanic_of(user) if user is not None else None
        if user is not None and mechanic is not None:
            login(request, user)
            if getattr(throttle, "key", None):  # (no key while the throttle is switched off)
                throttle.cache.delete(throttle.key)  # a success clears the failures
            response = HttpResponseRedirect(next_url or reverse("mechanic:dashboard"))
            if request_flags(request)["ENABLE_MECH_I18N"]:
                # This device speaks the profile's language from now on, signed in or out.
                _remember_language(response, str(mechanic.language))
            return response
        context["error"] = "credentials"
        # The form again, with the message (a 4xx document would be a console error).
        return render(request, "mechanic/login.html", context)
    if mechanic_of(request.user) is not None:
        return HttpResponseRedirect(next_url or reverse("mechanic:dashboard"))
    return render(request, "mechanic/login.html", context)


@require_POST
@csrf_protect
def language_view(request: HttpRequest) -> HttpResponse:
    """The header's language switcher (ENABLE_MECH_I18N): the choice goes to the language
    cookie and, for a signed-in mechanic, to their profile, then back to the page it came from.
    While halted the profile cannot change; the cookie still does."""
    if not request_flags(request)["ENABLE_MECH_I18N"]:
        return _json_error(FeatureDisabled())
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        choices = ", ".join(code for code, _ in settings.LANGUAGES)
        return _json_error(ValidationFailed({"language": [f"One of {choices}."]}))
    mechanic = mechanic_of(request.user)
    if mechanic is not None and mechanic.language != language:
        try:
            mechanic_update(mechanic=mechanic, language=language)
        except Halted:
            pass
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = reverse("mechanic:dashboard")
    response = HttpResponseRedirect(next_url)
    _remember_language(response, language)
    return response


def _remember_language(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]
    )


def _json_error(error: DomainError) -> JsonResponse:
    return JsonResponse(error.body(), status=error.status_code)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("mechanic:login")


@never_cache
def login_link_view(request: HttpRequest, token: str) -> HttpResponse:
    """The one-time link of a Telegram assignment: signs the mechanic in, opens the order."""
    try:
        link = login_link_redeem(token)
    except LoginLinkInvalid:
        return render(request, "mechanic/login.html", {"error": "link", "next": ""}, status=403)
    login(request, link.mechanic.user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("mechanic:order", order_id=link.order_id)


@mechanic_required
@require_safe  # a page to read: its forms post to the API
def dashboard_view(request: HttpRequest) -> HttpResponse:
    mechanic = _mechanic(request)
    flags = request_flags(request)
    chosen = request.GET.get("status", "all")
    if chosen not in FILTERS:
        chosen = "all"
    search = request.GET.get("q", "").strip()[:20]
    orders = orders_filtered(
        mechanic.orders.order_by("-id"), flags=flags, status=FILTERS[chosen], search=search
    )
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filters": list(FILTERS),
        "chosen": chosen,
        "search": search,
        "page": page,
        "stats": mechanic_stats(mechanic),
    }
    template = (
        "mechanic/_orders.html"
        if request.headers.get("X-Fragment") == "orders"
        else "mechanic/dashboard.html"
    )
    return render(request, template, context)


@mechanic_required
@require_safe  # a page to read: its forms post to the API
def order_view(request: HttpRequest, order_id: int) -> HttpResponse:
    mechanic = _mechanic(request)
    order = mechanic.orders.filter(pk=order_id).first()
    if order is None:
        raise Http404("No such order of yours.")
    contents = order_contents(order)
    entries = list(order.time_entries.order_by("started_at", "id"))
    running = TimeEntry.objects.filter(mechanic=mechanic, ended_at__isnull=True).first()
    every = request.GET.get("comments") == "all"
    comments, earlier_comments = order_comments_latest(
        order, limit=None if every else ORDER_PAGE_COMMENTS
    )
    context = {
        "order": order,
        "contents": contents,
        "transitions": TRANSITIONS[order.status],
        "comments": comments,
        "earlier_comments": earlier_comments,
        "entries": entries,
        "time_total": sum(entry.seconds for entry in entries),
        "running": running,
        "lines_max_count": ORDER_LINES_MAX_COUNT,
        # The "Add a part" form's catalog, while it is on and the order takes parts.
        "catalog_parts": list(parts())
        if order.is_open and request_flags(request)["ENABLE_PART_CATEGORIES"]
        else [],
        **_photo_limit(),
    }
    template = (
        "mechanic/_order.html"
        if request.headers.get("X-Fragment") == "order"
        else "mechanic/order.html"
    )
    return render(request, template, context)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@mechanic_required
@require_safe  # a page to read: its forms post to the API
def time_view(request: HttpRequest) -> HttpResponse:
    """The mechanic's time by period, grouped by day with each day's total."""
    period = request.GET.get("period", "today")
    if period not in PERIODS:
        period = "today"
    start, end = _day(request.GET.get("from", "")), _day(request.GET.get("to", ""))
    context: dict[str, Any] = {"periods": PERIODS, "period": period, "start": start, "end": end}
    try:
        first, last = time_period(period, start, end)
    except ValidationFailed as exc:
        context.update(error=exc.detail, days=[], total=0)
        return render(request, "mechanic/time.html", context, status=200)
    days = time_history(_mechanic(request), first, last)
    context.update(first=first, last=last, days=days, total=sum(d.total_seconds for d in days))
    return render(request, "mechanic/time.html", context)


@mechanic_required
@require_http_methods(["GET", "POST"])
def profile_view(request: HttpRequest) -> HttpResponse:
    """Phone number and password (the session stays signed in after the change), and the
    mechanic's figures of all time."""
    mechanic = _mechanic(request)
    context: dict[str, Any] = {"mechanic": mechanic}
    wait = 0  # seconds, when the password form's tries are used up
    if request.method == "POST":
        try:
            if request.POST.get("form") == "password":
                throttle = PasswordChangeThrottle()
                if not throttle.allow_request(request, None):  # type: ignore[arg-type]
                    wait = throttle.wait_seconds()
                    raise ValidationFailed(
                        {"current_password": [gettext(THROTTLED_MESSAGE) % {"wait": wait}]}
                    )
                mechanic_password_change(
                    user=request.user,  # type: ignore[arg-type]
                    current_password=request.POST.get("current_password", ""),
                    new_password=request.POST.get("new_password", ""),
                )
                update_session_auth_hash(request, request.user)  # type: ignore[arg-type]
                context["saved"] = "password"
            else:
                mechanic = mechanic_update(
                    mechanic=mechanic, phone=request.POST.get("phone", "")[:32]
                )
                context.update(mechanic=mechanic, saved="phone")
        except ValidationFailed as exc:
            context["errors"] = exc.detail
    context["stats"] = mechanic_stats(mechanic)
    response = render(request, "mechanic/profile.html", context, status=429 if wait else 200)
    if wait:
        response["Retry-After"] = str(wait)
    return response


CUSTOM_PART_ROWS = 3
# The order form's fields as its labels name them, for a refusal to say which it is about.
ORDER_FIELD_LABELS = {
    "part_type": gettext_lazy("Part"),
    "part_ids": gettext_lazy("Parts from the catalog"),
    "category_id": gettext_lazy("Category"),
    "vin": gettext_lazy("VIN"),
    "car_number": gettext_lazy("Car number"),
    "original_or_analog": gettext_lazy("Original or analog"),
    "name": gettext_lazy("Name"),
    "custom_quantity": gettext_lazy("Quantity"),
    "quantity": gettext_lazy("Quantity"),
    "unit_price": gettext_lazy("Unit price"),
    "photo": gettext_lazy("Photo"),
}


def _order_errors(detail: Any) -> dict[str, list[str]]:
    """A refusal's problems by the label of the field each is about ("" for the order)."""
    if not isinstance(detail, dict):
        return {"": [str(detail)]}
    return {
        str(ORDER_FIELD_LABELS.get(field, "")): list(problems) for field, problems in detail.items()
    }


def _new_order(request: HttpRequest, mechanic: MechanicProfile, flags: Any) -> int:
    """The form's fields, read; order_place makes all of it or none."""
    data = request.POST
    custom = []
    for n in range(CUSTOM_PART_ROWS):
        name = data.get(f"custom_name_{n}", "").strip()
        quantity = whole_number(data.get(f"custom_quantity_{n}", "1").strip() or "1", most=999)
        if not name:
            continue
        if quantity is None:
            raise ValidationFailed(
                {"custom_quantity": [gettext("A whole number from 1 to %(most)d.") % {"most": 999}]}
            )
        # No price is refused, as by the API (a part priced 0.00 unsaid would skew the total).
        custom.append((name, data.get(f"custom_price_{n}", "").strip() or None, quantity))
    # Sent whatever the flag says now: parts chosen while the catalog was on are refused if it
    # went off meanwhile (order_place), never dropped from the order unsaid.
    chosen = [whole_number(text) for text in data.getlist("part_ids")]
    order = order_place(
        mechanic=mechanic,
        vin=data.get("vin", ""),
        car_number=data.get("car_number", ""),
        original_or_analog=data.get("original_or_analog", ""),
        flags=flags,
        category_id=whole_number(data.get("category_id", "")),
        part_ids=[pk for pk in chosen if pk],
        typed_part=data.get("part_type", "").strip(),
        custom_parts=custom,
        photo=request.FILES.get("photo"),
    )
    return order.pk


def _new_order_once(request: HttpRequest, mechanic: MechanicProfile, flags: Any) -> int:
    """The form sent twice (a double click, a resend after a lost answer) makes one order:
    the second answer is the first's (conclave.idempotency)."""
    key = request.POST.get(idempotency.FORM_FIELD, "")
    if not key:
        return _new_order(request, mechanic, flags)
    _, answer, _ = idempotency.once(
        scope=idempotency.key_scope(request),
        key=key,
        fingerprint=idempotency.fingerprint(request),
        run=lambda: (302, {"order_id": _new_order(request, mechanic, flags)}),
    )
    return int(answer["order_id"])


@mechanic_required
@require_http_methods(["GET", "POST"])
def order_new_view(request: HttpRequest) -> HttpResponse:
    """The step-by-step order form: part (from the catalog while ENABLE_PART_CATEGORIES is on,
    plus custom parts), car number (while ENABLE_CAR_NUMBER is on) and VIN, original or
    analog, an optional photo, and a review before it is sent."""
    mechanic = _mechanic(request)
    flags = request_flags(request)
    context: dict[str, Any] = {
        "catalog": flags["ENABLE_PART_CATEGORIES"],
        "categories": list(categories()) if flags["ENABLE_PART_CATEGORIES"] else [],
        "parts": list(parts()) if flags["ENABLE_PART_CATEGORIES"] else [],
        "origins": PartOrigin.values,
        "custom_rows": range(CUSTOM_PART_ROWS),
        "form": request.POST,
        "chosen_parts": request.POST.getlist("part_ids"),
        "idempotency_key": request.POST.get(idempotency.FORM_FIELD) or uuid.uuid4().hex,
        **_photo_limit(),
    }
    if request.method == "POST":
        try:
            order_id = _new_order_once(request, mechanic, flags)
        except IdempotencyKeyReused:
            # The form was sent before, then changed (the browser's Back): shown again with
            # its values and a new key, so a second order is made only when asked for.
            context["idempotency_key"] = uuid.uuid4().hex
            context["errors"] = {
                "": [
                    gettext(
                        "This order was sent already. Check it and send it again to make another order."
                    )
                ]
            }
            return render(request, "mechanic/order_new.html", context)
        except Halted as exc:
            reason = exc.extra.get("reason", "")
            context["errors"] = {
                "": [gettext("The system is halted: %(reason)s") % {"reason": reason}]
            }
            return render(request, "mechanic/order_new.html", context, status=503)
        except DomainError as exc:
            context["errors"] = _order_errors(exc.detail)
            return render(request, "mechanic/order_new.html", context)
        return redirect("mechanic:order", order_id=order_id)
    return render(request, "mechanic/order_new.html", context)
