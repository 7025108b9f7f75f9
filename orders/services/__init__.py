"""Every write of the workshop. Each one appends its event in the same transaction."""

from orders.services.catalog import (
    categories_reorder,
    category_create,
    category_delete,
    category_update,
    part_create,
    part_delete,
    part_update,
)
from orders.services.items import item_add, item_remove, work_add, work_remove
from orders.services.mechanics import (
    mechanic_create,
    mechanic_create_check,
    mechanic_password_change,
    mechanic_password_reset,
    mechanic_set_active,
    mechanic_telegram_link,
    mechanic_update,
)
from orders.services.orders import (
    comment_add,
    order_assign,
    order_create,
    order_field_check,
    order_status_change,
    order_status_set,
    order_update,
)
from orders.services.photos import photo_add, photo_remove
from orders.services.placing import order_place
from orders.services.time import time_entry_add, timer_start, timer_stop

__all__ = [
    "categories_reorder",
    "category_create",
    "category_delete",
    "category_update",
    "comment_add",
    "item_add",
    "item_remove",
    "mechanic_create",
    "mechanic_create_check",
    "mechanic_password_change",
    "mechanic_password_reset",
    "mechanic_set_active",
    "mechanic_telegram_link",
    "mechanic_update",
    "order_assign",
    "order_create",
    "order_field_check",
    "order_update",
    "order_place",
    "order_status_change",
    "order_status_set",
    "part_create",
    "part_delete",
    "part_update",
    "photo_add",
    "photo_remove",
    "time_entry_add",
    "timer_start",
    "timer_stop",
    "work_add",
    "work_remove",
]
