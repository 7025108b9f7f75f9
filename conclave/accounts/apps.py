from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Django's account commands with the product's rules for a user kept (a username taken
    in any case, every account in the log). Listed before django.contrib.auth: of two apps
    with a command of the same name, the first listed is the one manage.py runs."""

    name = "conclave.accounts"
    label = "conclave_accounts"
    verbose_name = "Accounts from the command line"
