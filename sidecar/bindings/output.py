"""Output bindings as daprd's binding processor invokes them (`SendToOutputBinding`): the operation checked
against the binding's list, then the binding's answer (data and metadata), with daprd's error texts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.errors import DaprError, error

__all__ = ["BindingError", "BindingResponse", "OutputBinding", "invoke_output"]


class BindingError(Exception):
    """The binding refused or failed the call; its text goes into daprd's ERR_INVOKE_OUTPUT_BINDING."""

    def __init__(self, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.metadata = dict(metadata or {})  # daprd returns a binding's metadata even with an error


@dataclass(frozen=True)
class BindingResponse:
    data: bytes | None = None  # None: daprd answers 204 with no body
    metadata: Mapping[str, str] = field(default_factory=dict)


class OutputBinding(Protocol):
    type: str
    operations: tuple[str, ...]

    async def invoke(self, operation: str, data: bytes, metadata: Mapping[str, str]) -> BindingResponse: ...


class OutputError(DaprError):
    """ERR_INVOKE_OUTPUT_BINDING with the metadata the binding returned (sent as `metadata.*` headers)."""

    def __init__(self, base: DaprError, metadata: Mapping[str, str]) -> None:
        super().__init__(base.kind, base.message)
        self.binding_metadata = dict(metadata)  # not `metadata`: that is the ErrorInfo's


async def invoke_output(
    bindings: Mapping[str, OutputBinding], name: str, operation: str, data: bytes, metadata: Mapping[str, str]
) -> BindingResponse:
    def failed(reason: str, meta: Mapping[str, str] | None = None) -> DaprError:
        base = error("ERR_INVOKE_OUTPUT_BINDING", f"error invoking output binding {name}: {reason}")
        return OutputError(base, meta or {})

    if not operation:
        raise failed("operation field is missing from request")
    binding = bindings.get(name)
    if binding is None:
        raise failed(f"couldn't find output binding {name}")
    if operation not in binding.operations:
        supported = " ".join(binding.operations)
        raise failed(
            f"binding {name} does not support operation {operation}. supported operations:{supported}"
        )
    try:
        return await binding.invoke(operation, data, metadata)
    except BindingError as exc:
        raise failed(str(exc), exc.metadata) from None
