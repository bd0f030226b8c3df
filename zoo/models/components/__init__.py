"""Built-in components, one module per kind; each module is a plugin that registers its components."""
