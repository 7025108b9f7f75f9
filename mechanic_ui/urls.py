from django.urls import path

from mechanic_ui import views

app_name = "mechanic"

urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("login", views.login_view, name="login"),
    path("login/link/<str:token>", views.login_link_view, name="login-link"),
    path("language", views.language_view, name="language"),
    path("logout", views.logout_view, name="logout"),
    path("orders/new", views.order_new_view, name="order-new"),
    path("orders/<int:order_id>", views.order_view, name="order"),
    path("time", views.time_view, name="time"),
    path("profile", views.profile_view, name="profile"),
]
