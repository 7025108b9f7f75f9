from django.urls import path

from orders.apis import catalog, items, mechanics, orders, time

urlpatterns = [
    path("orders", orders.OrdersApi.as_view(), name="orders"),
    path("orders/<int:order_id>", orders.OrderDetailApi.as_view(), name="order-detail"),
    path(
        "mechanic/orders/<int:order_id>/status",
        orders.OrderStatusApi.as_view(),
        name="order-status",
    ),
    path(
        "orders/<int:order_id>/comments", orders.OrderCommentsApi.as_view(), name="order-comments"
    ),
    path("orders/<int:order_id>/items", items.OrderItemsApi.as_view(), name="order-items"),
    path(
        "orders/<int:order_id>/items/<int:item_id>",
        items.OrderItemApi.as_view(),
        name="order-item",
    ),
    path("orders/<int:order_id>/works", items.OrderWorksApi.as_view(), name="order-works"),
    path(
        "orders/<int:order_id>/works/<int:work_id>",
        items.OrderWorkApi.as_view(),
        name="order-work",
    ),
    path("orders/<int:order_id>/photos", items.OrderPhotosApi.as_view(), name="order-photos"),
    path(
        "orders/<int:order_id>/photos/<int:photo_id>",
        items.OrderPhotoApi.as_view(),
        name="order-photo",
    ),
    path(
        "admin/orders/<int:order_id>/assign", orders.OrderAssignApi.as_view(), name="order-assign"
    ),
    path(
        "admin/orders/<int:order_id>/status",
        orders.OrderStatusSetApi.as_view(),
        name="order-status-set",
    ),
    path("admin/orders/stats", orders.OrderStatsApi.as_view(), name="order-stats"),
    path("admin/mechanics", mechanics.MechanicsApi.as_view(), name="mechanics"),
    path("orders/<int:order_id>/time", time.OrderTimeApi.as_view(), name="order-time"),
    path(
        "mechanic/orders/<int:order_id>/time/start",
        time.TimerStartApi.as_view(),
        name="timer-start",
    ),
    path("mechanic/time/stop", time.TimerStopApi.as_view(), name="timer-stop"),
    path("mechanic/time/active", time.TimerActiveApi.as_view(), name="timer-active"),
    path("mechanic/time", time.TimeHistoryApi.as_view(), name="time-history"),
    path("mechanic/login", mechanics.MechanicLoginApi.as_view(), name="mechanic-login"),
    path("mechanic/profile", mechanics.MechanicProfileApi.as_view(), name="mechanic-profile"),
    path("mechanic/password", mechanics.MechanicPasswordApi.as_view(), name="mechanic-password"),
    path("mechanic/stats", mechanics.MechanicStatsApi.as_view(), name="mechanic-stats"),
    path("categories", catalog.CategoriesApi.as_view(), name="categories"),
    path("parts", catalog.PartsApi.as_view(), name="parts"),
    path("admin/categories", catalog.CategoryCreateApi.as_view(), name="category-create"),
    path(
        "admin/categories/reorder",
        catalog.CategoriesReorderApi.as_view(),
        name="categories-reorder",
    ),
    path("admin/categories/<int:category_id>", catalog.CategoryApi.as_view(), name="category"),
    path("admin/parts", catalog.PartCreateApi.as_view(), name="part-create"),
    path("admin/parts/<int:part_id>", catalog.PartApi.as_view(), name="part"),
]
