"""Running the engine: settings, the CLI, `todo-engine up` and `serve`, logs, local secrets, the heap."""
