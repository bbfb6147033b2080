"""Settings: the config file, the web config, flags and local-install detection."""
