"""`bindings.cron` (components-contrib `bindings/cron`): an input binding that fires on a schedule and
delivers an empty event to the app's route, as daprd's binding processor does over the HTTP app channel.

The schedule is validated when the component loads (daprd's `Init`: "schedule not set", "invalid schedule
format"). Ticks follow the sidecar's clock: the registry arms each one as a one-shot Scheduler job.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.appchannel import AppChannel, AppResponse
from sidecar.bindings.schedule import Schedule, ScheduleError, parse_schedule
from sidecar.state.properties import ComponentProperties, PropertyError

__all__ = ["CRON_TYPE", "CronSpec", "deliver", "go_utc_string", "probe"]

log = logging.getLogger("sidecar.bindings")

CRON_TYPE = "bindings.cron"
PROBE_TIMEOUT = 3.0  # daprd's --app-binding-options-timeout default


@dataclass(frozen=True)
class CronSpec:
    """A loaded `bindings.cron` component."""

    name: str
    schedule_text: str
    schedule: Schedule
    route: str  # the app path ticks are POSTed to (metadata `route`, else the binding's name)
    explicit_input: bool  # `direction` lists input: daprd skips the OPTIONS probe
    version: str = "v1"
    type: str = CRON_TYPE

    @classmethod
    def from_metadata(cls, name: str, metadata: Mapping[str, str], version: str = "v1") -> CronSpec:
        """Validate as daprd's `Init` does; raises `PropertyError` with its wording."""
        props = ComponentProperties(metadata)
        text = props.get("schedule") or ""
        if not text:
            raise PropertyError("schedule not set")
        try:
            schedule = parse_schedule(text)
        except ScheduleError as exc:
            raise PropertyError(f"invalid schedule format '{text}': {exc}") from None
        directions = _directions(metadata)
        if directions is not None and "input" not in directions:
            # daprd would look for an output binding of this type, and cron has none.
            raise PropertyError(
                f"direction {metadata_value(metadata, 'direction')!r}: bindings.cron is an input binding only"
            )
        # daprd takes the exact (case-sensitive) `route` item.
        route = metadata.get("route") or name
        return cls(name, text, schedule, route, directions is not None, version or "v1")


def metadata_value(metadata: Mapping[str, str], key: str) -> str:
    return next((v for k, v in metadata.items() if k.lower() == key), "")


def _directions(metadata: Mapping[str, str]) -> set[str] | None:
    """The `direction` item's entries (case-insensitive name, comma-separated), or None if absent."""
    if not any(k.lower() == "direction" for k in metadata):
        return None
    return {d.strip().lower() for d in metadata_value(metadata, "direction").split(",")}


def _path(route: str) -> str:
    return route if route.startswith("/") else f"/{route}"


async def probe(channel: AppChannel, spec: CronSpec) -> bool:
    """Whether the app subscribes to the binding: an explicit input `direction`, or daprd's
    `OPTIONS /<route>` answered 2xx or 405. A failed call raises (daprd fails reading bindings then)."""
    if spec.explicit_input:
        return True
    response = await channel.request(
        "OPTIONS", _path(spec.route), headers={"Content-Type": "application/json"}, timeout=PROBE_TIMEOUT
    )
    return response.status // 100 == 2 or response.status == 405


def go_utc_string(instant: float) -> str:
    """Go's `time.Now().UTC().String()` (the binding's `readTimeUTC`): `2006-01-02 15:04:05.999999999
    +0000 UTC`, trailing zeros of the fraction dropped."""
    moment = dt.datetime.fromtimestamp(instant, dt.UTC)
    fraction = f"{moment.microsecond:06d}000".rstrip("0")
    return f"{moment:%Y-%m-%d %H:%M:%S}{'.' + fraction if fraction else ''} +0000 UTC"


async def deliver(channel: AppChannel, spec: CronSpec, now: float) -> AppResponse:
    """One tick: `POST /<route>` with no body and the binding's metadata as headers (Go's canonical names
    of the lower-cased keys, as daprd's HTTP channel writes them)."""
    headers = {
        "Content-Type": "application/json",
        "Timezone": "Local",  # robfig's cron location (`time.Local`); a TZ= prefix only moves the schedule
        "Readtimeutc": go_utc_string(now),
    }
    return await channel.request("POST", _path(spec.route), headers=headers)
