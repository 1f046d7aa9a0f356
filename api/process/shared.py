"""What the public API and the app channel of one process share: the feed's change signal, the actors'
clock, the owners of lists and the metrics registry both count into."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.channel.feed_signal import FeedSignal
from api.middleware.metrics import ApiMetrics
from api.offset_clock import OffsetClock
from api.owners import OwnerCache
from todo_actors.sidecar_http import SidecarHttp

__all__ = ["Shared"]


@dataclass
class Shared:
    """One per process; pass the same instance to `create_app` and `create_channel_app`."""

    signal: FeedSignal = field(default_factory=FeedSignal)
    clock: OffsetClock = field(default_factory=OffsetClock)
    owners: OwnerCache = field(default_factory=OwnerCache)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    sidecar: SidecarHttp | None = None  # made by the first lifespan (`api.process.sidecar_link.sidecar_http`)
