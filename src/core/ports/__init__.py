"""Ports: the interfaces the framework asks of every technology. Stdlib and core.errors only."""
