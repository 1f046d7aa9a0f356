"""The app channel: what the sidecar calls (actor methods, reminders and timers, deliveries, the
housekeeping binding), and the feed, dead letters and housekeeping behind it."""
