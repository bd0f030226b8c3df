"""The registries: entries (pure data), the hook specifications, and the plugin loader that fills them."""
