"""The six flags of SPEC 5, all off."""

from django.db import migrations

FLAG_NAMES = (
    "ENABLE_CAR_NUMBER",
    "ENABLE_PART_CATEGORIES",
    "ENABLE_TG_ADMIN_NOTIFS",
    "ENABLE_TG_MECH_NOTIFS",
    "ENABLE_MECH_I18N",
    "ENABLE_UI_REFRESH",
)


def create(apps, schema_editor):
    FeatureFlag = apps.get_model("flags", "FeatureFlag")
    for name in FLAG_NAMES:
        FeatureFlag.objects.get_or_create(name=name, defaults={"enabled": False})


def remove(apps, schema_editor):
    apps.get_model("flags", "FeatureFlag").objects.filter(name__in=FLAG_NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [("flags", "0001_feature_flags")]

    operations = [migrations.RunPython(create, remove)]
