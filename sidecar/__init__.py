"""An embedded Dapr-compatible sidecar: daprd's HTTP and gRPC APIs on SQLite, for one machine."""

from sidecar.clock import Clock, ManualClock, SystemClock
from sidecar.config import SidecarConfig

__all__ = ["Clock", "ManualClock", "Sidecar", "SidecarConfig", "SidecarThread", "SystemClock"]


def __getattr__(name: str) -> object:
    # Lazy: importing the package for its config or clock must not pull in every engine.
    if name == "Sidecar":
        from sidecar.server import Sidecar

        return Sidecar
    if name == "SidecarThread":
        from sidecar.thread import SidecarThread

        return SidecarThread
    raise AttributeError(name)
