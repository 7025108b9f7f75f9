from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF tokens presented as `Authorization: Bearer <token>` (SPEC section 2)."""

    keyword = "Bearer"
