"""Scaffolding: the files `core init` writes for a new project and `core deploy` for its
deployment, from the templates in this package."""
