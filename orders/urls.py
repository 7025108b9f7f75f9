from django.urls import path

from orders import apis

urlpatterns = [
    path("orders", apis.OrdersApi.as_view(), name="orders"),
    path("orders/<int:order_id>", apis.OrderDetailApi.as_view(), name="order-detail"),
    path(
        "mechanic/orders/<int:order_id>/status",
        apis.OrderStatusApi.as_view(),
        name="order-status",
    ),
    path("orders/<int:order_id>/comments", apis.OrderCommentsApi.as_view(), name="order-comments"),
    path("admin/orders/<int:order_id>/assign", apis.OrderAssignApi.as_view(), name="order-assign"),
    path("orders/<int:order_id>/time", apis.OrderTimeApi.as_view(), name="order-time"),
    path(
        "mechanic/orders/<int:order_id>/time/start",
        apis.TimerStartApi.as_view(),
        name="timer-start",
    ),
    path("mechanic/time/stop", apis.TimerStopApi.as_view(), name="timer-stop"),
    path("mechanic/time/active", apis.TimerActiveApi.as_view(), name="timer-active"),
    path("mechanic/login", apis.MechanicLoginApi.as_view(), name="mechanic-login"),
    path("categories", apis.CategoriesApi.as_view(), name="categories"),
    path("parts", apis.PartsApi.as_view(), name="parts"),
]
