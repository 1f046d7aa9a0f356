"""daprd's Jobs API over HTTP (`/v1.0-alpha1/jobs/{name}` and its stable `/v1.0/jobs/{name}`): the body is
read as protojson reads daprd's `JobHTTPRequest` (unknown fields ignored, `data` any JSON value)."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import jobs_pb2
from google.protobuf import json_format, struct_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar.errors import error
from sidecar.jobs.errors import rich
from sidecar.jobs.service import NAMESPACE, JobsService

__all__ = ["routes"]

_UINT32 = 1 << 32


def routes(jobs: JobsService, app_id: str) -> list[BaseRoute]:
    async def schedule(request: Request) -> Response:
        name = str(request.path_params["name"]).strip()
        raw = await request.body()
        body = _object(raw) if raw else {}
        if body.get("name"):
            raise rich(
                "DAPR_SCHEDULER_JOB_NAME",
                "Set the job name in the url only",
                400,
                grpc.StatusCode.INVALID_ARGUMENT,
                {"appID": app_id, "namespace": NAMESPACE},
            )
        job, overwrite = _job(name, body)
        await jobs.schedule(job, overwrite)
        return Response(status_code=204)

    async def get(request: Request) -> Response:
        job = await jobs.get(str(request.path_params["name"]))
        return Response(json_format.MessageToJson(job, indent=None), media_type="application/json")

    async def delete(request: Request) -> Response:
        await jobs.delete(str(request.path_params["name"]))
        return Response(status_code=204)

    found: list[BaseRoute] = []
    for version in ("v1.0-alpha1", "v1.0"):
        path = f"/{version}/jobs/{{name}}"
        found += [
            Route(path, schedule, methods=["POST"]),
            Route(path, get, methods=["GET"]),
            Route(path, delete, methods=["DELETE"]),
        ]
    return found


def _malformed(reason: str) -> NoReturn:
    raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {reason}")


def _object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        _malformed(f"proto: syntax error: {exc}")
    if not isinstance(body, dict):
        _malformed("proto: syntax error: unexpected token, want {")
    return body


def _field(body: dict[str, Any], json_name: str, proto_name: str) -> Any:
    return body.get(json_name, body.get(proto_name))


def _string(body: dict[str, Any], json_name: str, proto_name: str = "") -> str | None:
    value = _field(body, json_name, proto_name or json_name)
    if value is not None and not isinstance(value, str):
        _malformed(f"proto: invalid value for string field {json_name}: {json.dumps(value)}")
    return value


def _job(name: str, body: dict[str, Any]) -> tuple[Any, bool]:
    job = jobs_pb2.Job(name=name)
    for field, json_name, proto_name in (
        ("schedule", "schedule", "schedule"),
        ("due_time", "dueTime", "due_time"),
        ("ttl", "ttl", "ttl"),
    ):
        value = _string(body, json_name, proto_name)
        if value is not None:
            setattr(job, field, value)
    repeats = body.get("repeats")
    if repeats is not None:
        if isinstance(repeats, str) and repeats.isdigit():
            repeats = int(repeats)
        if isinstance(repeats, bool) or not isinstance(repeats, int) or not 0 <= repeats < _UINT32:
            _malformed(f"proto: invalid value for uint32 field repeats: {json.dumps(repeats)}")
        job.repeats = repeats
    if body.get("data") is not None:
        value = struct_pb2.Value()
        json_format.ParseDict(body["data"], value)
        job.data.Pack(value)
    policy = _field(body, "failurePolicy", "failure_policy")
    if policy is not None:
        try:
            job.failure_policy.CopyFrom(json_format.ParseDict(policy, common_pb2.JobFailurePolicy()))
        except json_format.ParseError as exc:
            _malformed(f"proto: {exc}")
    overwrite = body.get("overwrite", False)
    if not isinstance(overwrite, bool):
        _malformed(f"proto: invalid value for bool field overwrite: {json.dumps(overwrite)}")
    return job, overwrite
