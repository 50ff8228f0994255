"""One fast way for a read serializer to give exactly what its declared fields give.

DRF's `Serializer.to_representation` builds every field again for each serializer instance (a model
serializer introspects its model each time) and then sends each value through the field's generic
machinery. `CompiledRepresentation` reads a class's fields once and keeps, for each, the shortest way
to the same output: a plain attribute or key read of its `source`, then a builtin (`str`, `int`) or
a direct ISO 8601 formatting where the field does no more than that, and the field's own
`to_representation` where it does. Method fields call the serializer's method; nested serializers
render through a copy bound to the serializer, as DRF binds them. Where the quick read cannot be
sure (a missing attribute or key, a callable, a related object that does not exist) the field's own
`get_attribute` decides, so defaults, `allow_null` and skipped fields behave as in DRF.

`rows()` reads a queryset as plain dicts of just the columns the fields read (the job list's page),
which costs less than making model instances.

The fields stay the one description of a shape: drf-spectacular makes the OpenAPI schema from them
and the output comes from them. A serializer with a field this does not know to be free of the
request (a custom field class, a hyperlink, a file URL) keeps DRF's own `to_representation`;
`compiled()` says whether a class was compiled.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django.utils import timezone
from rest_framework import ISO_8601, fields, relations, serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

# Field classes whose output depends on the value alone (not on the request or the parent).
_VALUE_ONLY = {
    cls.to_representation
    for cls in (
        fields.BigIntegerField,
        fields.BooleanField,
        fields.CharField,
        fields.ChoiceField,
        fields.DateField,
        fields.DateTimeField,
        fields.DecimalField,
        fields.DurationField,
        fields.FloatField,
        fields.IntegerField,
        fields.JSONField,
        fields.MultipleChoiceField,
        fields.ReadOnlyField,
        fields.TimeField,
        fields.UUIDField,
    )
}
_CONTAINERS = {fields.ListField.to_representation, fields.DictField.to_representation}

# How a step turns the value it read into output.
SAME, CONVERT, TIME, METHOD, NESTED = range(5)


class Step(NamedTuple):
    name: str  # the output key
    field: fields.Field  # bound to a template instance; only its value-only methods are used
    attr: str | None  # the one attribute or key to read, or
    path: tuple[str, ...]  # several, one after the other (empty: the instance itself)
    how: int
    convert: Callable[[Any], Any] | str | None = None  # CONVERT: a function; METHOD: the method's name


class _Unsure(Exception):
    """The quick read met a callable: the field's own get_attribute knows what to do with it."""


# No docstring: drf-spectacular would show it as every such serializer's description.
class CompiledRepresentation:  # put it first in a read serializer's bases
    def to_representation(self, instance: Any) -> dict[str, Any]:
        steps = type(self).compiled_steps()
        if steps is None:
            return super().to_representation(instance)
        out = {}
        mapping = type(instance) is dict or isinstance(instance, Mapping)
        zone = None
        for name, field, attr, path, how, convert in steps:
            try:
                if attr is not None:
                    value = instance[attr] if mapping else getattr(instance, attr)
                    if callable(value):
                        raise _Unsure
                else:
                    value = _walk(instance, path)
            except (KeyError, AttributeError, ObjectDoesNotExist, _Unsure):
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                if isinstance(value, PKOnlyObject):
                    value = value.pk
            if value is None or how == SAME:
                out[name] = value
            elif how == CONVERT:
                out[name] = convert(value)
            elif how == TIME:
                if zone is None:
                    zone = timezone.get_current_timezone() if settings.USE_TZ else False
                out[name] = _iso_datetime(field, value, zone)
            elif how == METHOD:
                out[name] = getattr(self, convert)(value)
            else:
                out[name] = self._bound(name, field).to_representation(value)
        return out

    @classmethod
    def compiled(cls) -> bool:
        return cls.compiled_steps() is not None

    @classmethod
    def compiled_steps(cls) -> list[Step] | None:
        if "_compiled_steps" not in cls.__dict__:
            cls._compiled_steps = _compile(cls)
        return cls.__dict__["_compiled_steps"]

    @classmethod
    def rows(cls, queryset: QuerySet) -> list[dict[str, Any]]:
        """The rows of `queryset` as dicts of just what the fields read, shaped as their sources are
        (`latest_execution.status` -> row["latest_execution"]["status"], None where the related row
        does not exist), so the output is what the model instances would give, without making them.
        For serializers whose fields all read columns (no method or nested fields)."""
        if "_row_plan" not in cls.__dict__:
            cls._row_plan = _row_plan(cls)
        columns, flat, relations = cls.__dict__["_row_plan"]
        out = []
        for values in queryset.values_list(*columns):
            row = dict(zip(flat, values))
            for relation, start, keys in relations:
                row[relation] = None if values[start] is None else dict(zip(keys, values[start + 1 :]))
            out.append(row)
        return out

    def _bound(self, name: str, field: serializers.BaseSerializer) -> serializers.BaseSerializer:
        """A nested serializer whose parent is this one, so that its context is this one's, as DRF
        binds its fields; made once per instance."""
        bound = self.__dict__.setdefault("_bound_nested", {})
        if name not in bound:
            bound[name] = _rebound(field, self)
            if isinstance(field, serializers.ListSerializer):
                bound[name].child = _rebound(field.child, bound[name])
        return bound[name]


def _rebound(field: fields.Field, parent: fields.Field) -> fields.Field:
    """A copy of an already bound field under another parent. Shallow (DRF's deepcopy runs every
    __init__ again), which output allows: it writes nothing on the field; what the copy builds
    itself (its own fields, its nested copies) starts empty."""
    copied = object.__new__(type(field))
    copied.__dict__.update(field.__dict__)
    for built in ("fields", "_readable_fields", "_writable_fields", "_bound_nested"):
        copied.__dict__.pop(built, None)
    copied.parent = parent
    return copied


def _walk(instance: Any, path: tuple[str, ...]) -> Any:
    """fields.get_attribute's walk, for values it returns as they are."""
    for attr in path:
        instance = instance[attr] if isinstance(instance, Mapping) else getattr(instance, attr)
        if callable(instance):
            raise _Unsure
    return instance


def _row_plan(
    cls: type,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, int, tuple[str, ...]], ...]]:
    """The columns to select (each relation's key first, which tells whether its row exists), the
    row's own keys, and each relation's place among the columns and keys."""
    steps = cls.compiled_steps()
    if steps is None or any(step.how in (METHOD, NESTED) for step in steps):
        raise TypeError(f"{cls.__name__} has fields that read more than columns; serialize instances.")
    paths = [step.path or (step.attr,) for step in steps]
    if any(len(path) > 2 for path in paths):
        raise TypeError(f"{cls.__name__}: rows reach one related row deep, not {max(paths, key=len)}.")
    flat = tuple(path[0] for path in paths if len(path) == 1)
    nested: dict[str, list[str]] = {}
    for path in paths:
        if len(path) == 2:
            nested.setdefault(path[0], []).append(path[1])
    if set(flat) & set(nested):
        raise TypeError(f"{cls.__name__}: {sorted(set(flat) & set(nested))} read as a column and a row.")
    columns, relations = list(flat), []
    for relation, keys in nested.items():
        relations.append((relation, len(columns), tuple(keys)))
        columns += [f"{relation}__pk", *(f"{relation}__{key}" for key in keys)]
    return tuple(columns), flat, tuple(relations)


def _compile(cls: type) -> list[Step] | None:
    template = cls()
    steps = []
    for name, field in template.fields.items():
        if field.write_only:
            continue
        step = _step(cls, name, field)
        if step is None:
            return None
        steps.append(step)
    return steps


def _read(
    name: str, field: fields.Field, how: int, convert: Any = None, source: list[str] | None = None
) -> Step:
    attrs = tuple(field.source_attrs if source is None else source)
    attr = attrs[0] if len(attrs) == 1 else None
    return Step(name, field, attr, attrs if attr is None else (), how, convert)


def _step(cls: type, name: str, field: fields.Field) -> Step | None:
    default = getattr(field, "default", fields.empty)
    if callable(default) and getattr(default, "requires_context", False):
        return None
    kind = type(field)
    if isinstance(field, fields.SerializerMethodField):
        if kind.to_representation is not fields.SerializerMethodField.to_representation:
            return None
        return _read(name, field, METHOD, field.method_name)
    if isinstance(field, serializers.BaseSerializer):
        if kind.get_attribute is not fields.Field.get_attribute:
            return None
        return _read(name, field, NESTED)
    if isinstance(field, relations.PrimaryKeyRelatedField):
        return _primary_key_step(cls, name, field)
    if kind.get_attribute is not fields.Field.get_attribute or not _value_only(field):
        return None
    return _value_step(name, field)


def _primary_key_step(cls: type, name: str, field: relations.PrimaryKeyRelatedField) -> Step | None:
    """The related row's key read from its column (`job_id`), as DRF's pk-only optimisation does."""
    kind = type(field)
    model = getattr(getattr(cls, "Meta", None), "model", None)
    if (
        model is None
        or kind.to_representation is not relations.PrimaryKeyRelatedField.to_representation
        or kind.get_attribute is not relations.RelatedField.get_attribute
        or field.pk_field is not None
        or not field.use_pk_only_optimization()
        or len(field.source_attrs) != 1
    ):
        return None
    column = model._meta.get_field(field.source_attrs[0]).attname
    return _read(name, field, CONVERT, _key, source=[column])


def _value_only(field: fields.Field) -> bool:
    method = type(field).to_representation
    if method in _CONTAINERS:
        return _value_only(field.child)
    return method in _VALUE_ONLY


def _value_step(name: str, field: fields.Field) -> Step:
    """A builtin where it gives what the field's to_representation gives, else that method."""
    method = type(field).to_representation
    if method is fields.CharField.to_representation:
        return _read(name, field, CONVERT, str)
    if method is fields.IntegerField.to_representation:
        return _read(name, field, CONVERT, int)
    if method is fields.FloatField.to_representation:
        return _read(name, field, CONVERT, float)
    if method is fields.BigIntegerField.to_representation and not getattr(
        field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING
    ):
        return _read(name, field, CONVERT, int)
    if method is fields.UUIDField.to_representation and field.uuid_format == "hex_verbose":
        return _read(name, field, CONVERT, str)
    if (method is fields.JSONField.to_representation and not field.binary) or (
        method is fields.ReadOnlyField.to_representation
    ):
        return _read(name, field, SAME)
    if (
        method is fields.DateTimeField.to_representation
        and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601
        and not hasattr(field, "timezone")
    ):
        return _read(name, field, TIME)
    return _read(name, field, CONVERT, field.to_representation)


def _key(value: Any) -> Any:
    """The key read from its column, or the related row's key where get_attribute gave the row."""
    return value.pk if isinstance(value, Model) else value


def _iso_datetime(field: fields.DateTimeField, value: Any, zone: Any) -> Any:
    """DateTimeField's ISO 8601 (in the current time zone `zone`, Z for UTC) for an aware datetime."""
    if zone is False or type(value) is not datetime or value.utcoffset() is None:
        return field.to_representation(value)
    try:
        text = value.astimezone(zone).isoformat()
    except OverflowError:
        return field.to_representation(value)  # DRF's own error
    return text[:-6] + "Z" if text.endswith("+00:00") else text
