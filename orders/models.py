"""The workshop: mechanics, orders and the parts catalog (SPEC 4).

Every change to these rows is made by orders.services, which appends its event in the same
transaction; nothing here writes on its own.
"""

import uuid
from decimal import Decimal
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    HEBREW = "he", "עברית"
    RUSSIAN = "ru", "Русский"


class MechanicProfile(models.Model):
    """A mechanic: a user who may see and change only the orders assigned to them. A Telegram
    chat belongs to one mechanic (the bot finds the mechanic by it)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mechanic"
    )
    display_name = models.CharField(max_length=100)
    phone = models.CharField(max_length=32, blank=True, default="")
    telegram_chat_id = models.BigIntegerField(null=True, blank=True)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.ENGLISH)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "mechanic_profiles"
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["telegram_chat_id"],
                condition=models.Q(telegram_chat_id__isnull=False),
                name="mechanic_chat_once",
            )
        ]

    def __str__(self) -> str:
        return self.display_name


class OrderStatus(models.TextChoices):
    NEW = "new", _("New")
    IN_PROGRESS = "in_progress", _("In progress")
    READY = "ready", _("Ready")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


# The only moves an order's status can make.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    OrderStatus.NEW: (OrderStatus.IN_PROGRESS, OrderStatus.CANCELLED),
    OrderStatus.IN_PROGRESS: (OrderStatus.READY, OrderStatus.CANCELLED),
    OrderStatus.READY: (OrderStatus.COMPLETED,),
    OrderStatus.COMPLETED: (),
    OrderStatus.CANCELLED: (),
}


class PartOrigin(models.TextChoices):
    ORIGINAL = "original", _("Original")
    ANALOG = "analog", _("Analog")


class Order(models.Model):
    """A mechanic's order for a part. `vin` is upper-case; `status` only moves along
    TRANSITIONS; `mechanic` is the assigned mechanic (who alone may see it besides staff)."""

    mechanic_name = models.CharField(max_length=100)
    vin = models.CharField(max_length=17)
    # Stored and returned only while ENABLE_CAR_NUMBER is on; kept when the flag goes off.
    car_number = models.CharField(max_length=20, blank=True, default="")
    part_type = models.CharField(max_length=100)
    category = models.CharField(max_length=100)
    original_or_analog = models.CharField(max_length=8, choices=PartOrigin.choices)
    part = models.ForeignKey(
        "Part", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders_created",
    )
    mechanic = models.ForeignKey(
        MechanicProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    updated_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Orders made through the Telegram bot: the chat that made it and the language it chose,
    # told when the order is ready.
    telegram_chat_id = models.BigIntegerField(null=True, blank=True)
    telegram_language = models.CharField(
        max_length=2, choices=Language.choices, blank=True, default=""
    )

    class Meta:
        db_table = "orders"
        ordering = ["-id"]
        # Equality and range lookups only (searches are substring matches no index serves):
        # plain b-trees, without the `varchar_pattern_ops` twin `db_index` adds on
        # PostgreSQL, each of which every new order also paid for. The car number's index
        # has the name the rollout runbook checks for.
        indexes = [
            models.Index(fields=["vin"], name="idx_orders_vin"),
            models.Index(fields=["car_number"], name="idx_orders_car_number"),
            models.Index(fields=["status"], name="idx_orders_status"),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.vin}, {self.status})"

    @property
    def is_open(self) -> bool:
        """Items, works and photos change only while the order is still being worked on."""
        return bool(TRANSITIONS[self.status])


class NamedInThreeLanguages:
    """A catalog row with `name_en`, `name_he` and `name_ru`, served in the caller's language
    (English when that name is empty)."""

    name_en: str

    def name(self, language: str) -> str:
        return getattr(self, f"name_{language}", "") or self.name_en


class Category(NamedInThreeLanguages, models.Model):
    """A catalog category, named in the three languages of the workshop."""

    name_en = models.CharField(max_length=100)
    name_he = models.CharField(max_length=100)
    name_ru = models.CharField(max_length=100)
    icon = models.CharField(max_length=32, blank=True, default="")
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "categories"
        ordering = ["sort_order", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name_en


class Part(NamedInThreeLanguages, models.Model):
    """A catalog part with its price (Decimal, never float)."""

    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="parts", db_index=False
    )
    name_en = models.CharField(max_length=200)
    name_he = models.CharField(max_length=200)
    name_ru = models.CharField(max_length=200)
    part_number = models.CharField(max_length=64, blank=True, default="")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    is_common = models.BooleanField(default=False)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "parts"
        ordering = ["sort_order", "id"]
        # The foreign key's index, under the name the rollout runbook checks for.
        indexes = [models.Index(fields=["category"], name="idx_parts_category_id")]

    def __str__(self) -> str:
        return self.name_en


class Comment(models.Model):
    """A note on an order by a mechanic or staff; never edited, never empty."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="order_comments"
    )
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "order_comments"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on order {self.order_id}"


class TimeEntry(models.Model):
    """Time a mechanic spent on an order: a running timer (`ended_at` empty; one per mechanic
    at most, enforced by the database) or a finished or manual entry (end after start)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="time_entries")
    mechanic = models.ForeignKey(
        MechanicProfile, on_delete=models.PROTECT, related_name="time_entries"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    manual = models.BooleanField(default=False)
    notes = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "order_time_entries"
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mechanic"],
                condition=models.Q(ended_at__isnull=True),
                name="one_running_timer_per_mechanic",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gt=models.F("started_at")),
                name="time_entry_ends_after_it_starts",
            ),
        ]

    def __str__(self) -> str:
        return f"time on order {self.order_id} by {self.mechanic_id}"

    @property
    def seconds(self) -> int:
        from django.utils import timezone

        end = self.ended_at or timezone.now()
        return max(int((end - self.started_at).total_seconds()), 0)


class OrderItem(models.Model):
    """A part on an order: from the catalog (`part` set; name, number and price copied when it
    was added, so a later catalog change does not rewrite the order) or a custom part."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="items")
    part = models.ForeignKey(
        Part, null=True, blank=True, on_delete=models.PROTECT, related_name="order_items"
    )
    name = models.CharField(max_length=200)
    part_number = models.CharField(max_length=64, blank=True, default="")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="order_items_added"
    )
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "order_items"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="order_item_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(unit_price__gte=0), name="order_item_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name} on order {self.order_id}"

    @property
    def is_custom(self) -> bool:
        return self.part_id is None

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderWork(models.Model):
    """Labour on an order: a custom work with its price and estimated minutes."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="works")
    name = models.CharField(max_length=200)
    description = models.TextField(max_length=2000, blank=True, default="")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    estimated_minutes = models.PositiveIntegerField(null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="order_works_added"
    )
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "order_works"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="order_work_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} on order {self.order_id}"


def order_total(items: "list[OrderItem]", works: "list[OrderWork]") -> Decimal:
    """Parts (quantity x unit price) plus labour, in Decimal: cents never drift."""
    total = sum((item.line_total for item in items), Decimal("0.00"))
    return sum((work.price for work in works), total).quantize(Decimal("0.01"))


def _photo_path(photo: "OrderPhoto", filename: str) -> str:
    # A random name: the path says nothing about the order and cannot be guessed; the file is
    # only ever served through the API, after the order's visibility is checked.
    return f"order-photos/{uuid.uuid4().hex}{PurePath(filename).suffix.lower()}"


class OrderPhoto(models.Model):
    """A JPEG, PNG or WebP photo of an order, stored through Django's storage API."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="photos")
    file = models.FileField(upload_to=_photo_path, max_length=200)
    content_type = models.CharField(max_length=32)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="order_photos"
    )
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "order_photos"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"photo {self.pk} of order {self.order_id}"


class MechanicLoginLink(models.Model):
    """A one-time, short-lived sign-in link sent to a mechanic with an assignment: it signs
    them in and opens the order. The URL carries the signed `nonce`; using it stamps `used_at`
    (once, by a conditional update)."""

    nonce = models.CharField(max_length=32, primary_key=True)
    mechanic = models.ForeignKey(
        MechanicProfile, on_delete=models.PROTECT, related_name="login_links"
    )
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="login_links")
    created_at = models.DateTimeField(db_default=Now())
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mechanic_login_links"

    def __str__(self) -> str:
        return f"login link for {self.mechanic_id} to order {self.order_id}"
