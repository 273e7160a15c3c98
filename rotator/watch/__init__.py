"""Watching between rotations: credentials' last use, and leak reports turned into action."""
