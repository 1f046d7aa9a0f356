"""`secretstores.local.file` and `secretstores.local.env`, answering as components-contrib's versions do.

The file store flattens a JSON file into names joined by `nestedSeparator` (default `:`), or keeps one level
of key/value maps with `multiValued`. Non-string leaves render as Go's `fmt.Sprintf("%s", v)` renders them
(`%!s(float64=5432)`), as daprd does, so a secrets file behaves the same under both sidecars.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from sidecar.secrets.store import SecretError, SecretNotFound
from sidecar.state.properties import ComponentProperties

__all__ = ["EnvSecretStore", "LocalFileSecretStore"]

log = logging.getLogger("sidecar.secrets")

_MULTI = "MULTIPLE_KEY_VALUES_PER_SECRET"
_Secret = str | dict[str, str]


class LocalFileSecretStore:
    """Secrets from a JSON file, read once when the component loads."""

    component_type = "secretstores.local.file"

    def __init__(
        self,
        name: str,
        secrets_file: str | Path,
        *,
        nested_separator: str = ":",
        multi_valued: bool = False,
    ) -> None:
        self.name = name
        self.secrets_file = Path(secrets_file)
        self.nested_separator = nested_separator or ":"
        self.features = frozenset({_MULTI}) if multi_valued else frozenset()
        try:
            document = json.loads(self.secrets_file.read_bytes(), parse_int=float)
        except OSError as exc:
            raise SecretError(f"cannot read secrets file {self.secrets_file}: {exc}") from exc
        except ValueError as exc:
            raise SecretError(f"secrets file {self.secrets_file} is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise SecretError(f"secrets file {self.secrets_file} must hold a JSON object")
        self._secrets: dict[str, _Secret] = {}
        if multi_valued:
            for key, value in document.items():
                if isinstance(value, str):
                    self._secrets[key] = value
                elif isinstance(value, dict):
                    flat: dict[str, str] = {}
                    self._flatten(value, [], flat)
                    self._secrets[key] = flat
        else:
            flat_all: dict[str, str] = {}
            self._flatten(document, [], flat_all)
            self._secrets.update(flat_all)

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, str], *, base_dir: Path) -> LocalFileSecretStore:
        """Build from component metadata; a relative `secretsFile` is relative to `base_dir`."""
        props = ComponentProperties(metadata)
        secrets_file = props.text("secretsFile")
        if not secrets_file:
            raise SecretError("missing local secrets file in metadata")
        path = Path(secrets_file).expanduser()
        return cls(
            name,
            path if path.is_absolute() else base_dir / path,
            nested_separator=props.text("nestedSeparator", default=":"),
            multi_valued=props.flag("multiValued"),
        )

    def get(self, name: str) -> dict[str, str]:
        value = self._secrets.get(name)
        if value is None:
            raise SecretNotFound(name)
        return {name: value} if isinstance(value, str) else dict(value)

    def bulk(self) -> dict[str, dict[str, str]]:
        return {name: self.get(name) for name in self._secrets}

    def _flatten(self, node: Any, path: list[str], out: dict[str, str]) -> None:
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            key = self.nested_separator.join(path)
            if key in out:
                log.warning("secret store %s: duplicate key %r, keeping the first", self.name, key)
            else:
                out[key] = go_sprint_s(node)
            return
        for key, child in items:
            self._flatten(child, [*path, str(key)], out)


class EnvSecretStore:
    """Secrets from environment variables (`prefix` + name), read at each call.

    As in daprd, `APP_API_TOKEN` and `DAPR_*` are never returned, and a missing variable is an empty value.
    """

    component_type = "secretstores.local.env"
    features: frozenset[str] = frozenset()

    def __init__(self, name: str, *, prefix: str = "", environ: Mapping[str, str] | None = None):
        self.name = name
        self.prefix = prefix
        self._environ = environ

    @classmethod
    def from_metadata(
        cls, name: str, metadata: Mapping[str, str], *, environ: Mapping[str, str] | None = None
    ) -> EnvSecretStore:
        return cls(name, prefix=ComponentProperties(metadata).text("prefix"), environ=environ)

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def get(self, name: str) -> dict[str, str]:
        variable = self.prefix + name
        if _allowed(variable):
            return {name: self._env().get(variable, "")}
        log.warning("Access to env var %s is forbidden", name)
        return {name: ""}

    def bulk(self) -> dict[str, dict[str, str]]:
        secrets: dict[str, dict[str, str]] = {}
        size = len(self.prefix)
        for variable, value in self._env().items():
            if self.prefix and (len(variable) <= size or not variable.startswith(self.prefix)):
                continue
            if _allowed(variable):
                secrets[variable[size:]] = {variable[size:]: value}
        return secrets


def _allowed(variable: str) -> bool:
    upper = variable.upper()
    return upper != "APP_API_TOKEN" and not upper.startswith("DAPR_")


def go_sprint_s(value: Any) -> str:
    """Go's `fmt.Sprintf("%s", v)` of a decoded JSON leaf (string, float64, bool or nil)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, bool):
        return f"%!s(bool={'true' if value else 'false'})"
    return f"%!s(float64={_go_float_v(float(value))})"


def _go_float_v(f: float) -> str:
    """Go's `%v` of a float64 (`%g`, shortest digits): exponent form when the exponent is < -4 or >= 6."""
    if math.isinf(f) or math.isnan(f):
        return "+Inf" if f > 0 else ("-Inf" if f < 0 else "NaN")
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    digits = Decimal(repr(f)).normalize()
    exp = digits.adjusted()
    if -4 <= exp < 6:
        return format(digits, "f")
    sign, mantissa, _ = digits.as_tuple()
    text = "".join(map(str, mantissa))
    head = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{head}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
