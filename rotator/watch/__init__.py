"""Watching between rotations: leak reports from secret scanners, turned into action."""
