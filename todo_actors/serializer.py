"""The app's one Dapr serializer: pydantic models in and out, user strings never reinterpreted.

Pass it as the actor runtime's `message_serializer` and `state_serializer` and to `ActorProxyFactory`.
The SDK's `DefaultJSONSerializer` decodes any string starting with a date into a `datetime` and any
string shaped like "5m" into a `timedelta`, even inside titles; this one leaves strings alone.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import typing
from collections.abc import Callable
from typing import Any

from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.serializers import Serializer
from dapr.serializers.util import convert_from_dapr_duration, convert_to_dapr_duration
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

__all__ = ["PydanticSerializer"]


class PydanticSerializer(Serializer):
    """JSON via pydantic, typed by the `data_type` the SDK passes.

    How the SDK calls it (dapr 1.19), and what comes back:

    * actor method argument: `deserialize(body, <annotation of the method's parameter>)` -> a model
      instance when the interface annotates a model. Annotations must be real types: an interface
      module with `from __future__ import annotations` hands over strings, which fail loudly here.
    * proxy reply: `deserialize(body, <return annotation>)`; `-> None` or no annotation gives `object`.
    * actor state: always `deserialize(value, object)` (state manager reads, and the cache refresh
      after a reentrant save), so state comes back as plain JSON (dicts); validate it into models,
      as `layout.load` does. Writes get the model and emit `model_dump_json()`.
    * reminder and timer registration: the SDK's own dicts with `timedelta` fields and base64 data;
      timedeltas are written in the SDK's Go duration format ("0h0m5s0ms0μs"), which daprd parses.
    * reminder/timer callbacks: `deserialize(body, object)`; `dueTime`/`period` stay strings, so
      `receive_reminder` gets `due_time` as text ("" from Dapr 1.15+), never a timedelta.

    `bytes` become a base64 JSON string (as the SDK does; raw bytes could not sit inside the state
    transaction body) and `deserialize(..., bytes)` decodes it back. Note that `ActorProxy` sends a
    `bytes` argument raw, without calling the serializer, so actor methods should take models.
    """

    def serialize(self, obj: object, custom_hook: Callable[[object], Any] | None = None) -> bytes:
        if callable(custom_hook):
            # Same contract as DefaultJSONSerializer: the hook maps obj to something encodable.
            obj = custom_hook(obj)
        if isinstance(obj, BaseModel):
            return obj.model_dump_json().encode("utf-8")
        return to_json(_wire_value(obj))

    def deserialize(
        self,
        data: bytes | str,
        data_type: Any = object,
        custom_hook: Callable[[Any], object] | None = None,
    ) -> Any:
        if not isinstance(data, bytes | str):
            raise ValueError("data must be str or bytes types")
        obj = _decode(data, data_type)
        return custom_hook(obj) if callable(custom_hook) else obj


def _wire_value(value: Any) -> Any:
    """Plain values as the SDK's encoder writes them, for the types pydantic would write differently."""
    if isinstance(value, dict):
        return {k: _wire_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire_value(v) for v in value]
    if isinstance(value, dt.timedelta):
        return convert_to_dapr_duration(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, ActorRuntimeConfig):
        return _wire_value(value.as_dict())
    return value


def _decode(data: bytes | str, data_type: Any) -> Any:
    if data_type is None or data_type is object or data_type is Any:
        # Plain json: strings stay strings.
        return json.loads(data)
    if isinstance(data_type, str | typing.ForwardRef):
        raise TypeError(
            f"cannot deserialize into the string annotation {data_type!r}: the actor interface "
            "module must not use `from __future__ import annotations` (the SDK reads raw annotations)"
        )
    if isinstance(data_type, type) and issubclass(data_type, BaseModel):
        return data_type.model_validate_json(data)
    if data_type is bytes:
        text = json.loads(data)
        if not isinstance(text, str):
            raise ValueError("expected a base64 JSON string for bytes")
        return base64.b64decode(text, validate=True)
    if data_type is dt.timedelta:
        text = json.loads(data)
        if isinstance(text, str) and text and not text.startswith(("P", "-P")):
            return convert_from_dapr_duration(text)
    return _adapter(data_type).validate_json(data)


def _adapter(data_type: Any) -> TypeAdapter[Any]:
    try:
        return _cached_adapter(data_type)
    except TypeError:  # unhashable annotation
        return TypeAdapter(data_type)


@functools.lru_cache(maxsize=256)
def _cached_adapter(data_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(data_type)
