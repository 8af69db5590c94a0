"""Shell commands of the simulated device; importing this package registers them all."""

from harness.android.double.commands import activity, basic, logcat, packages, system  # noqa: F401
