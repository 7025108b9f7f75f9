"""The notification outbox in the admin: read-only, filterable; failed or dead rows can be sent
again ("retry now", through notifications.services, an event each)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from conclave.admin_site import actor_of, error_text
from conclave.exceptions import DomainError
from notifications.models import Notification, NotificationStatus
from notifications.services import notification_retry


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "chat_id", "status", "attempts", "order", "created_at",
                    "sent_at", "last_error")  # fmt: skip
    list_filter = ("status", "kind", "created_at")
    search_fields = ("=chat_id", "=order__id")
    ordering = ("-id",)
    list_per_page = 50
    show_full_result_count = False
    actions = ("retry_now",)
    readonly_fields = ("kind", "chat_id", "text", "reply_markup", "order", "status", "attempts",
                       "next_attempt_at", "claimed_until", "last_error", "telegram_message_id",
                       "idempotency_key", "created_at", "sent_at")  # fmt: skip
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Rows change only by delivery and "retry now"."""

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        context.update(show_save=False, show_save_and_continue=False,
                       show_save_and_add_another=False, show_delete=False)  # fmt: skip
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.action(description="Retry now (failed or dead rows)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        retried = 0
        for row in queryset.filter(
            status__in=(NotificationStatus.FAILED, NotificationStatus.DEAD)
        ).only("pk"):
            try:
                notification_retry(notification_id=row.pk, actor=actor_of(request))
            except DomainError as exc:
                self.message_user(request, f"{row.pk}: {error_text(exc)}", messages.ERROR)
            else:
                retried += 1
        skipped = queryset.count() - retried
        self.message_user(request, f"{retried} notification(s) queued again.")
        if skipped:
            self.message_user(
                request, f"{skipped} not failed or dead: left as they are.", messages.WARNING
            )
