"""The six runtime feature flags (SPEC section 5). All are off unless switched on."""

FLAG_NAMES: tuple[str, ...] = (
    "ENABLE_CAR_NUMBER",
    "ENABLE_PART_CATEGORIES",
    "ENABLE_TG_ADMIN_NOTIFS",
    "ENABLE_TG_MECH_NOTIFS",
    "ENABLE_MECH_I18N",
    "ENABLE_UI_REFRESH",
)
