"""pytest plugin that runs `device_tests/` against a target (registered as an entry point)."""
