"""JSON Schemas of the Dapr resources, as daprd 1.16's API types and CRDs define them (`pkg/apis/*/v1alpha1`).

Unknown fields are errors: the Kubernetes API server prunes them silently and daprd ignores them, so a
typo would otherwise turn a setting off without a word. Sections this project does not use are accepted as
objects without a closer look.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.deploy.dapr_fields import API

__all__ = ["SCHEMAS"]


def _obj(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


def _map(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}
_STRS = {"type": "array", "items": _STR}
_ANY_OBJ = {"type": "object"}
_META = {"type": "object", "required": ["name"], "properties": {"name": _STR, "namespace": _STR}}
_SCOPES = _STRS


def _resource(
    kind: str, spec: dict[str, Any], *, scopes: bool, auth: bool = False, api: str = API
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "apiVersion": {"const": api},
        "kind": {"const": kind},
        "metadata": _META,
        "spec": spec,
    }
    if scopes:
        props["scopes"] = _SCOPES
    if auth:
        props["auth"] = _obj({"secretStore": _STR}, ("secretStore",))
    return _obj(props, ("apiVersion", "kind", "metadata"))


_NAME_VALUE = _obj(
    {
        "name": _STR,
        "value": {"type": ["string", "number", "boolean", "object", "array"]},
        "secretKeyRef": _obj({"name": _STR, "key": _STR}, ("name",)),
        "envRef": _STR,
    },
    ("name",),
)
_COMPONENT = _resource(
    "Component",
    _obj(
        {
            "type": _STR,
            "version": _STR,
            "ignoreErrors": _BOOL,
            "initTimeout": _STR,
            "metadata": {"type": "array", "items": _NAME_VALUE},
        },
        ("type", "version", "metadata"),
    ),
    scopes=True,
    auth=True,
)
_METRIC = _obj(
    {
        "enabled": _BOOL,
        "recordErrorCodes": _BOOL,
        "http": _obj({"increasedCardinality": _BOOL, "pathMatching": _STRS, "excludeVerbs": _BOOL}),
        "rules": {"type": "array", "items": _ANY_OBJ},
        "latencyDistributionBuckets": {"type": "array", "items": _INT},
    },
    ("enabled",),
)
_CONFIGURATION = _resource(
    "Configuration",
    _obj(
        {
            "appHttpPipeline": _ANY_OBJ,
            "httpPipeline": _ANY_OBJ,
            "tracing": _obj(
                {
                    "samplingRate": _STR,
                    "stdout": _BOOL,
                    "zipkin": _obj({"endpointAddress": _STR}, ("endpointAddress",)),
                    "otel": _obj(
                        {"protocol": {"enum": ["grpc", "http"]}, "endpointAddress": _STR, "isSecure": _BOOL},
                        ("endpointAddress", "isSecure", "protocol"),
                    ),
                },
                ("samplingRate",),
            ),
            "metric": _METRIC,
            "metrics": _METRIC,
            "mtls": _ANY_OBJ,
            "secrets": _obj(
                {
                    "scopes": {
                        "type": "array",
                        "items": _obj(
                            {
                                "storeName": _STR,
                                "defaultAccess": {"enum": ["allow", "deny"]},
                                "allowedSecrets": _STRS,
                                "deniedSecrets": _STRS,
                            },
                            ("storeName",),
                        ),
                    }
                },
                ("scopes",),
            ),
            "accessControl": _obj(
                {
                    "defaultAction": {"enum": ["allow", "deny"]},
                    "trustDomain": _STR,
                    "policies": {
                        "type": "array",
                        "items": _obj(
                            {
                                "appId": _STR,
                                "defaultAction": {"enum": ["allow", "deny"]},
                                "trustDomain": _STR,
                                "namespace": _STR,
                                "operations": {"type": "array", "items": _ANY_OBJ},
                            },
                            ("appId",),
                        ),
                    },
                }
            ),
            "nameResolution": _ANY_OBJ,
            "features": {
                "type": "array",
                "items": _obj({"name": _STR, "enabled": _BOOL}, ("name", "enabled")),
            },
            "api": _ANY_OBJ,
            "components": _obj({"deny": _STRS}),
            "logging": _obj(
                {"apiLogging": _obj({"enabled": _BOOL, "obfuscateURLs": _BOOL, "omitHealthChecks": _BOOL})}
            ),
            "wasm": _ANY_OBJ,
            "workflow": _obj(
                {
                    "maxConcurrentWorkflowInvocations": {"type": "integer", "minimum": 0},
                    "maxConcurrentActivityInvocations": {"type": "integer", "minimum": 0},
                }
            ),
        }
    ),
    scopes=False,
)
_POLICY_NAMES = {"timeout": _STR, "retry": _STR, "circuitBreaker": _STR}
_RESILIENCY = _resource(
    "Resiliency",
    _obj(
        {
            "policies": _obj(
                {
                    "timeouts": _map(_STR),
                    "retries": _map(
                        _obj(
                            {
                                "policy": {"enum": ["constant", "exponential"]},
                                "duration": _STR,
                                "maxInterval": _STR,
                                "maxRetries": _INT,
                                "matching": _obj({"httpStatusCodes": _STR, "gRPCStatusCodes": _STR}),
                            }
                        )
                    ),
                    "circuitBreakers": _map(
                        _obj({"maxRequests": _INT, "interval": _STR, "timeout": _STR, "trip": _STR})
                    ),
                }
            ),
            "targets": _obj(
                {
                    "apps": _map(_obj({**_POLICY_NAMES, "circuitBreakerCacheSize": _INT})),
                    "actors": _map(
                        _obj(
                            {
                                **_POLICY_NAMES,
                                "circuitBreakerScope": {"enum": ["type", "id", "both"]},
                                "circuitBreakerCacheSize": _INT,
                            }
                        )
                    ),
                    "components": _map(
                        _obj({"inbound": _obj(_POLICY_NAMES), "outbound": _obj(_POLICY_NAMES)})
                    ),
                }
            ),
        },
        ("policies", "targets"),
    ),
    scopes=True,
)
_SUBSCRIPTION = _resource(
    "Subscription",
    _obj(
        {
            "pubsubname": _STR,
            "topic": _STR,
            "metadata": _map(_STR),
            "routes": _obj(
                {
                    "rules": {
                        "type": "array",
                        "items": _obj({"match": _STR, "path": _STR}, ("match", "path")),
                    },
                    "default": _STR,
                }
            ),
            "deadLetterTopic": _STR,
            "bulkSubscribe": _obj(
                {"enabled": _BOOL, "maxMessagesCount": _INT, "maxAwaitDurationMs": _INT}, ("enabled",)
            ),
        },
        ("pubsubname", "topic", "routes"),
    ),
    scopes=True,
    api="dapr.io/v2alpha1",
)
SCHEMAS = {
    "Component": _COMPONENT,
    "Configuration": _CONFIGURATION,
    "Resiliency": _RESILIENCY,
    "Subscription": _SUBSCRIPTION,
}
