"""CLI command groups beyond `run`; each module has `register(app)` and owns its commands."""

MODULES = ("authoring", "cachecmd", "lockcmd", "scripts")
