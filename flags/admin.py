"""The flags in the admin: the six flags with their state, pin and last change; turning them
on or off (after a confirmation page), the kill switch, and the rollout runbook's phases.
Every change goes through flags.services (an event each; pinned flags refused)."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from conclave.admin_site import actor_of, error_text
from conclave.exceptions import DomainError
from flags.models import FeatureFlag
from flags.selectors import flags_detail
from flags.services import flag_set, flags_kill_switch

# The rollout runbook's order: backend features, then the mechanic UI, then notifications.
ROLLOUT_PHASES = (
    ("Phase 1: backend features", ("ENABLE_CAR_NUMBER", "ENABLE_PART_CATEGORIES")),
    ("Phase 2: mechanic UI", ("ENABLE_MECH_I18N", "ENABLE_UI_REFRESH")),
    ("Phase 3: Telegram notifications", ("ENABLE_TG_ADMIN_NOTIFS", "ENABLE_TG_MECH_NOTIFS")),
)


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "pinned", "updated_by", "updated_at")
    readonly_fields = ("name", "enabled", "updated_by", "updated_at")
    actions = ("turn_on", "turn_off")
    change_list_template = "admin/flags/featureflag/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra = {"can_change": self.has_change_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra)

    @admin.display(description="State")
    def state(self, flag: FeatureFlag) -> str:
        enabled = settings.FEATURE_FLAG_PINS.get(flag.name, flag.enabled)
        return "on" if enabled else "off"

    @admin.display(description="Pinned by the environment", boolean=True)
    def pinned(self, flag: FeatureFlag) -> bool:
        return flag.name in settings.FEATURE_FLAG_PINS

    # --- Changes, each confirmed first ---------------------------------------------------------

    @admin.action(description="Turn the selected flags on…", permissions=["change"])
    def turn_on(self, request: HttpRequest, queryset: QuerySet[FeatureFlag]) -> Any:
        return self._set(request, [f.name for f in queryset], enabled=True, action="turn_on")

    @admin.action(description="Turn the selected flags off…", permissions=["change"])
    def turn_off(self, request: HttpRequest, queryset: QuerySet[FeatureFlag]) -> Any:
        return self._set(request, [f.name for f in queryset], enabled=False, action="turn_off")

    def _set(
        self, request: HttpRequest, names: Iterable[str], *, enabled: bool, action: str
    ) -> HttpResponse | None:
        names = list(names)
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Turn {'on' if enabled else 'off'} {len(names)} flag(s)?",
                "names": names,
                "enabled": enabled,
                "action": action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.opts,
            }
            return TemplateResponse(request, "admin/flags/featureflag/confirm.html", context)
        for name in names:
            try:
                flag_set(name=name, enabled=enabled, actor=actor_of(request), via="admin")
            except DomainError as exc:
                self.message_user(request, f"{name}: {error_text(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"{name} is {'on' if enabled else 'off'}.")
        return None

    # --- The kill switch and the rollout phases ------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("kill-switch/", wrap(self.kill_switch_view), name="flags_featureflag_kill"),
            path("rollout/", wrap(self.rollout_view), name="flags_featureflag_rollout"),
            *super().get_urls(),
        ]

    def kill_switch_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("confirmed") == "yes":
            try:
                result = flags_kill_switch(actor=actor_of(request))
            except DomainError as exc:
                self.message_user(request, error_text(exc), messages.ERROR)
            else:
                switched = ", ".join(result["switched_off"]) or "none was on"
                self.message_user(request, f"Kill switch: switched off {switched}.")
                if result["pinned"]:
                    self.message_user(
                        request,
                        f"Pinned by the environment, unchanged: {', '.join(result['pinned'])}.",
                        messages.WARNING,
                    )
            return redirect("admin:flags_featureflag_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Turn every flag off?",
            "flags": flags_detail(),
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/flags/featureflag/kill_switch.html", context)

    def rollout_view(self, request: HttpRequest) -> HttpResponse:
        """The runbook's phases with their flags' state; a phase is turned on or rolled back
        in one step (after the confirmation page)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            phases = dict(ROLLOUT_PHASES)
            phase = request.POST.get("phase", "")
            if phase not in phases:
                self.message_user(request, "Unknown phase.", messages.ERROR)
                return redirect("admin:flags_featureflag_rollout")
            enabled = request.POST.get("enabled") == "on"
            response = self._set(request, phases[phase], enabled=enabled, action="")
            if isinstance(response, TemplateResponse):  # the confirmation page
                response.context_data = {**(response.context_data or {}), "phase": phase}
                return response
            return redirect("admin:flags_featureflag_rollout")
        detail = {flag["name"]: flag for flag in flags_detail()}
        context = {
            **self.admin_site.each_context(request),
            "title": "Rollout phases",
            "phases": [
                {
                    "name": name,
                    "flags": [detail[flag] for flag in flags],
                    "all_on": all(detail[flag]["enabled"] for flag in flags),
                }
                for name, flags in ROLLOUT_PHASES
            ],  # fmt: skip
            "can_change": self.has_change_permission(request),
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/flags/featureflag/rollout.html", context)
