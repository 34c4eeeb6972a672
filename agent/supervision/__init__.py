"""The service manager's side: readiness, sd_notify, OOM protection, metrics and logs."""
