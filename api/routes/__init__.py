"""One router per resource of the public API.

Path ids use the `segment` convertor: one path segment without `:`, since `:` starts an action
(`/items/{item_id}:complete`). So `PATCH /items/x:complete` is the action's resource answering 405 with
its `Allow`, not the item route refusing `x:complete` as an id. Registered here, before any route
module compiles its paths (Starlette keeps convertors in one process-wide table).
"""

from starlette.convertors import Convertor, register_url_convertor

__all__ = ["SegmentConvertor"]


class SegmentConvertor(Convertor[str]):
    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("segment", SegmentConvertor())
