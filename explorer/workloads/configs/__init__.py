"""Built-in model configs (Hugging Face config.json files, each citing its source)."""

__all__: list[str] = []
