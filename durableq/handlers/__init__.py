"""What user code fills: the handler registry, the context a handler receives, builtins."""
