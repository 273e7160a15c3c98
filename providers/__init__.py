"""rotator's built-in provider adapters, one module or package per outside system."""
