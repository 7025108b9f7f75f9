from django.apps import AppConfig


class MechanicUiConfig(AppConfig):
    name = "mechanic_ui"
    verbose_name = "Mechanic UI"
