"""Input bindings of the embedded sidecar (`bindings.cron`): schedules armed on the durable Scheduler and
delivered to the app as daprd delivers them."""
