"""Photos of an order: real JPEG, PNG or WebP images only, size-limited, stored through
Django's storage API under a random name."""

import hashlib

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext
from PIL import Image, UnidentifiedImageError

from conclave.exceptions import Conflict, NotFound, ValidationFailed
from events.services import event_append
from orders.models import OrderPhoto
from orders.services.common import actor_of, contents_changed, open_order_for_update

PHOTO_FORMATS = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
MAX_PIXELS = 50_000_000  # well under Pillow's decompression-bomb limit


def _inspect(upload: UploadedFile) -> tuple[str, int, int]:
    """The image's format and size, read from its bytes (the name and the declared content
    type are the client's claims, not evidence)."""
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image_format, (width, height) = image.format or "", image.size
            if image_format not in PHOTO_FORMATS:
                raise ValidationFailed({"photo": [gettext("A JPEG, PNG or WebP image.")]})
            if width * height > MAX_PIXELS:
                raise ValidationFailed(
                    {
                        "photo": [
                            gettext("At most %(pixels)s pixels.") % {"pixels": f"{MAX_PIXELS:,}"}
                        ]
                    }
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationFailed(
            {"photo": [gettext("Not a readable JPEG, PNG or WebP image.")]}
        ) from None
    finally:
        upload.seek(0)
    return image_format, width, height


@transaction.atomic
def photo_add(*, order_id: int, user: User, upload: UploadedFile) -> OrderPhoto:
    """Attaches a photo to an open order the user may change."""
    limit = settings.ORDER_PHOTO_MAX_BYTES
    if not upload.size or upload.size > limit:
        raise ValidationFailed(
            {"photo": [gettext("1 byte to %(mib)d MiB.") % {"mib": limit // (1024 * 1024)}]}
        )
    image_format, width, height = _inspect(upload)
    order = open_order_for_update(order_id, user)
    if order.photos.count() >= settings.ORDER_PHOTO_MAX_COUNT:
        raise Conflict(
            gettext("Order %(order)d has %(count)d photos already: remove one first.")
            % {"order": order_id, "count": settings.ORDER_PHOTO_MAX_COUNT}
        )
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    content_type, suffix = PHOTO_FORMATS[image_format]
    photo = OrderPhoto(
        order=order,
        content_type=content_type,
        size=upload.size,
        width=width,
        height=height,
        sha256=digest.hexdigest(),
        uploaded_by=user,
    )
    photo.file.save(f"photo{suffix}", upload, save=False)
    try:
        photo.save()
        contents_changed(order)
        event_append(
            event_type="order.photo_added",
            payload={
                "order_id": order.pk,
                "photo_id": photo.pk,
                "content_type": content_type,
                "size": photo.size,
                "sha256": photo.sha256,
                "actor": actor_of(user),
            },
        )
    except BaseException:
        photo.file.delete(save=False)  # no row, no file
        raise
    return photo


@transaction.atomic
def photo_remove(*, order_id: int, photo_id: int, user: User) -> None:
    """Takes a photo off an open order the user may change (a wrong or private picture sent
    by mistake). Its file is deleted once the removal is committed: a rollback keeps both."""
    order = open_order_for_update(order_id, user)
    photo = order.photos.filter(pk=photo_id).first()
    if photo is None:
        raise NotFound(f"No photo {photo_id} on order {order_id}.")
    storage, name = photo.file.storage, str(photo.file.name)
    photo.delete()
    contents_changed(order)
    event_append(
        event_type="order.photo_removed",
        payload={
            "order_id": order.pk,
            "photo_id": photo_id,
            "sha256": photo.sha256,
            "actor": actor_of(user),
        },
    )
    transaction.on_commit(lambda: storage.delete(name))
