"""The reference web page: a single page served by the app at `/` that uses only the public REST API and
its event stream, the way a third-party frontend would."""

from api.web.site import router

__all__ = ["router"]
