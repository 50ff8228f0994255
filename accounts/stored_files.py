"""A row's uploaded file leaves storage with the row: when the row is deleted, or the file replaced.

Signals, not services, because rows go in many ways (the admin's delete page and bulk action, the
API, a user's deletion cascading to everything he owned). The file is removed once the transaction
commits, so a rolled-back deletion keeps it, and only when no row of the model still names the key.
"""

from functools import partial

from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete, pre_save


def release_files(model: type[models.Model], field_name: str) -> None:
    """Remove the file in `model.field_name` from storage when its row no longer names it."""
    uid = f"release-files:{model._meta.label}.{field_name}"
    post_delete.connect(
        partial(_deleted, field_name=field_name), sender=model, weak=False, dispatch_uid=f"{uid}:delete"
    )
    pre_save.connect(
        partial(_saving, field_name=field_name), sender=model, weak=False, dispatch_uid=f"{uid}:save"
    )


def _deleted(sender, instance, *, field_name: str, **kwargs) -> None:
    key = getattr(instance, field_name).name
    if key:
        transaction.on_commit(partial(_remove_unless_named, sender, field_name, key))


def _saving(sender, instance, *, field_name: str, raw: bool = False, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    old = sender._default_manager.filter(pk=instance.pk).values_list(field_name, flat=True).first()
    if old and old != getattr(instance, field_name).name:
        transaction.on_commit(partial(_remove_unless_named, sender, field_name, old))


def _remove_unless_named(model: type[models.Model], field_name: str, key: str) -> None:
    if not model._default_manager.filter(**{field_name: key}).exists():
        default_storage.delete(key)
