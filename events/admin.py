"""The event log and the keys in the admin.

The log is read-only (no add, change or delete; the database refuses them anyway), filtered by
type, agent, time and sequence range, with each event's canonical JSON, hashes and signatures,
and a "verify range" action. Keys are listed and shown, registered and rotated through
events.services; nothing here can delete one.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html

from conclave.admin_site import actor_of, error_text
from conclave.exceptions import DomainError, Halted
from conclave.models import VerificationKind, VerificationRun
from conclave.services import last_verified_sequence, verification_record
from events import crypto
from events.models import AgentKey, ClockDriftWarning, Event, KeeperKey, KeyKind
from events.services import (
    event_append,
    keeper_key_register,
    keeper_key_register_check,
    keeper_key_rotate,
    key_register,
    key_register_check,
    key_rotate,
)
from events.verification import verify_range

# A range verified from the admin is read whole: keep it to what a request can carry.
MAX_RANGE = 100_000


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows nobody changes here: no add, change or delete button, URL or permission."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AgentFilter(admin.SimpleListFilter):
    """The agents that hold keys (a short table), not a DISTINCT over the whole log."""

    title = "agent"
    parameter_name = "agent_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        agents = (
            AgentKey.objects.filter(kind=KeyKind.AGENT)
            .order_by("agent_id")
            .values_list("agent_id", flat=True)
            .distinct()
        )
        return [(agent, agent) for agent in agents]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(agent_id=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "event_type", "agent_id", "authority_timestamp", "short_hash")
    list_filter = ("event_type", AgentFilter, "authority_timestamp")
    search_fields = ("=event_type",)
    url_lookups = ("sequence__gte", "sequence__lte")  # the page's "sequence from ... to" form
    ordering = ("-sequence",)
    list_per_page = 50
    show_full_result_count = False
    actions = ("verify_selected_range",)
    change_list_template = "admin/events/event/change_list.html"
    fields = (
        "sequence", "event_type", "agent_id", "local_timestamp", "authority_timestamp",
        "verified", "canonical_json", "prev_hash", "content_hash", "signing_key_id",
        "signing_mode", "signature", "witness_id", "witness_key_id", "witness_signature",
        "schema_version",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="content hash")
    def short_hash(self, event: Event) -> str:
        return f"{event.content_hash[:16]}…"

    @admin.display(description="canonical JSON (RFC 8785, what content_hash covers)")
    def canonical_json(self, event: Event) -> str:
        canonical = crypto.canonical_content(
            sequence=event.sequence,
            event_type=event.event_type,
            payload=event.payload,
            agent_id=event.agent_id,
            signing_key_id=event.signing_key_id,
            signing_mode=event.signing_mode,
            local_timestamp=event.local_timestamp,
            prev_hash=event.prev_hash,
            schema_version=event.schema_version,
        )
        return format_html('<pre class="mono" id="canonical-json">{}</pre>', canonical.decode())

    @admin.display(description="verified")
    def verified(self, event: Event) -> str:
        last = last_verified_sequence()
        if event.sequence <= last:
            return f"yes: part of the log verified from event 1 to {last}"
        return f"not yet: the verified log ends at {last}"

    @admin.action(description="Verify the range of the selected events", permissions=["view"])
    def verify_selected_range(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        bounds = queryset.aggregate(first=Min("sequence"), last=Max("sequence"))
        first, last = bounds["first"], bounds["last"]
        if first is None:
            return
        if last - first + 1 > MAX_RANGE:
            self.message_user(
                request,
                f"At most {MAX_RANGE:,} events at once; `manage.py verify_chain` checks the "
                "whole log.",
                messages.ERROR,
            )
            return
        started = timezone.now()
        result = verify_range(first, last)
        verification_record(kind=VerificationKind.RANGE, result=result, started_at=started)
        try:  # the audit trail; while halted nothing is appended, the check still runs
            event_append(
                event_type="verification.range_checked",
                payload={"first": first, "last": last, "ok": result.ok,
                         "actor": actor_of(request)},
            )  # fmt: skip
        except Halted:
            pass
        if result.ok:
            self.message_user(
                request,
                f"Events {first} to {last} verified: {result.checked} events, chain, hashes, "
                "agent and witness signatures intact.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"Verification failed at event {result.first_bad_sequence}: {result.reason}. "
                "The system is halted.",
                messages.ERROR,
            )


@admin.register(ClockDriftWarning)
class ClockDriftWarningAdmin(ReadOnlyAdmin):
    list_display = ("event_sequence", "drift_seconds", "local_timestamp", "authority_timestamp")
    ordering = ("-id",)
    list_per_page = 50


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "ok", "first_sequence", "last_sequence", "checked",
                    "first_bad_sequence", "finished_at")  # fmt: skip
    list_filter = ("kind", "ok")
    ordering = ("-id",)
    list_per_page = 50


# --- Keys ---------------------------------------------------------------------------------------


class KeyAdmin(admin.ModelAdmin):
    """Keys: listed, shown, registered and rotated; never changed otherwise, never deleted."""

    ordering = ("-active_from",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a key only ever gains an active_until, by rotation

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"events.change_{self.opts.model_name}")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return list(self.form.base_fields)
        return self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_readonly_fields(request, obj) if obj is not None else ()

    @admin.display(description="fingerprint")
    def fingerprint(self, key: AgentKey | KeeperKey) -> str:
        return crypto.key_fingerprint(bytes(key.public_key))

    @admin.display(description="active", boolean=True)
    def active_now(self, key: AgentKey | KeeperKey) -> bool:
        return key.active_at(timezone.now())


class AgentKeyForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=KeyKind.choices)
    agent_id = forms.CharField(label="Owner (agent or witness id)", max_length=200)

    class Meta:
        model = AgentKey
        fields = ("kind", "agent_id")

    def clean(self) -> dict[str, Any]:
        """The service's refusals on the form."""
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                key_register_check(kind=cleaned["kind"], owner=cleaned["agent_id"])
            except DomainError as exc:
                self.add_error("agent_id", error_text(exc))
        return cleaned


@admin.register(AgentKey)
class AgentKeyAdmin(KeyAdmin):
    """Agent and witness keys: the private half is made in the signer (the key directory in
    development, the PKCS#11 token in production) and never shown."""

    form = AgentKeyForm
    list_display = ("key_id", "kind", "agent_id", "fingerprint", "active_from", "active_until",
                    "active_now")  # fmt: skip
    list_filter = ("kind",)
    search_fields = ("key_id", "agent_id")
    readonly_fields = ("key_id", "kind", "agent_id", "fingerprint", "active_from",
                       "active_until", "created_at")  # fmt: skip
    actions = ("rotate_selected",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        key = key_register(
            kind=form.cleaned_data["kind"],
            owner=form.cleaned_data["agent_id"],
            actor=actor_of(request),
        )
        obj.pk, obj.key_id, obj._state.adding = key.pk, key.key_id, False

    @admin.action(description="Rotate the selected keys…", permissions=["rotate"])
    def rotate_selected(self, request: HttpRequest, queryset: QuerySet[AgentKey]) -> Any:
        keys = list(queryset)
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Rotate {len(keys)} key(s)?",
                "keys": keys,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.opts,
            }
            return TemplateResponse(request, "admin/events/rotate_confirm.html", context)
        for key in keys:
            try:
                new = key_rotate(key_id=key.key_id, actor=actor_of(request))
            except DomainError as exc:
                self.message_user(request, f"{key.key_id}: {error_text(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"{key.key_id} retired; {new.key_id} replaces it.")
        return None


class KeeperKeyForm(forms.ModelForm):
    keeper_id = forms.CharField(label="Keeper", max_length=200)
    public_key_hex = forms.RegexField(
        label="Ed25519 public key (64 hexadecimal characters)",
        regex=r"^[0-9a-fA-F]{64}$",
        error_messages={"invalid": "64 hexadecimal characters: the raw 32-byte public key."},
    )

    class Meta:
        model = KeeperKey
        fields = ("keeper_id",)

    def clean(self) -> dict[str, Any]:
        """The service's refusals (a public key registered already) on the form."""
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                keeper_key_register_check(
                    keeper_id=cleaned["keeper_id"],
                    public_key=bytes.fromhex(cleaned["public_key_hex"]),
                )
            except DomainError as exc:
                self.add_error(None, error_text(exc))
        return cleaned


@admin.register(KeeperKey)
class KeeperKeyAdmin(KeyAdmin):
    """Keepers' keys: the keeper keeps the private key and hands in the public one."""

    form = KeeperKeyForm
    list_display = ("key_id", "keeper_id", "fingerprint", "active_from", "active_until",
                    "active_now")  # fmt: skip
    search_fields = ("key_id", "keeper_id")
    readonly_fields = ("key_id", "keeper_id", "fingerprint", "active_from", "active_until",
                       "created_at", "rotate_link")  # fmt: skip

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        key = keeper_key_register(
            keeper_id=form.cleaned_data["keeper_id"],
            public_key=bytes.fromhex(form.cleaned_data["public_key_hex"]),
            actor=actor_of(request),
        )
        obj.pk, obj.key_id, obj._state.adding = key.pk, key.key_id, False

    @admin.display(description="rotation")
    def rotate_link(self, key: KeeperKey) -> str:
        if key.active_until is not None:
            return "retired"
        return format_html('<a href="{}" id="rotate-link">Rotate this key…</a>', "rotate/")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.rotate_view)
        return [path("<uuid:pk>/change/rotate/", view, name="events_keeperkey_rotate"),
                *super().get_urls()]  # fmt: skip

    def rotate_view(self, request: HttpRequest, pk: Any) -> HttpResponse:
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        key = get_object_or_404(KeeperKey, pk=pk)
        form = KeeperRotateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                new = keeper_key_rotate(
                    key_id=key.key_id,
                    public_key=bytes.fromhex(form.cleaned_data["public_key_hex"]),
                    actor=actor_of(request),
                )
            except DomainError as exc:
                self.message_user(request, error_text(exc), messages.ERROR)
            else:
                self.message_user(request, f"{key.key_id} retired; {new.key_id} replaces it.")
                return redirect("admin:events_keeperkey_change", new.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rotate {key.key_id}",
            "key": key,
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/events/keeper_rotate.html", context)


class KeeperRotateForm(forms.Form):
    public_key_hex = KeeperKeyForm.base_fields["public_key_hex"]
