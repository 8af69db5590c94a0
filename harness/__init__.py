"""Test harness for end-to-end encrypted messenger backups."""

__version__ = "0.1.0"
