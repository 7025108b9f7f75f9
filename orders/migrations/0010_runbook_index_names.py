"""Indexes under the names the rollout runbook checks (`idx_orders_car_number`,
`idx_parts_category_id`), and plain b-trees for vin and status without the
`varchar_pattern_ops` twins `db_index` made (no query of this product uses them)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_status_and_origin_labels"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="car_number",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.CharField(
                choices=[
                    ("new", "New"),
                    ("in_progress", "In progress"),
                    ("ready", "Ready"),
                    ("completed", "Completed"),
                    ("cancelled", "Cancelled"),
                ],
                default="new",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="vin",
            field=models.CharField(max_length=17),
        ),
        migrations.AlterField(
            model_name="part",
            name="category",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="parts",
                to="orders.category",
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["vin"], name="idx_orders_vin"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["car_number"], name="idx_orders_car_number"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status"], name="idx_orders_status"),
        ),
        migrations.AddIndex(
            model_name="part",
            index=models.Index(fields=["category"], name="idx_parts_category_id"),
        ),
    ]
