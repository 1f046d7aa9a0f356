"""The REST facade and the `todo-engine` command line (the composition root).

`api.app.create_app(settings)` is the public API (`api/routes/`, `api/middleware/`),
`api.channel.app.create_channel_app(settings)` the app channel the sidecar calls; `api/process/` runs them
(`serve.AppServers` both in one process; `settings.load_settings(environ)` reads the settings once).
Submodules are imported where needed, so `todo-engine sidecar run` stays light.
"""

__all__: list[str] = []
