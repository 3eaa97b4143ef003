"""Headwater: a self-hosted package repository for conda and PyPI packages."""

__version__ = "0.1.0"
