"""Pardus: camera traps to a live monitoring system for protected areas."""

__version__ = "0.1.0"
