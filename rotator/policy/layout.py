"""The shape of a policy file: its top-level keys and the secret fields a file may set.

Both ways of reading a file (:mod:`.quick_load` and :mod:`.located_file`) and
the error wording of :mod:`.problems` judge a file against these names, so
that they agree on what a file may hold.
"""

from __future__ import annotations

from rotator.policy.model import Policy
from rotator.policy.schedule import Schedule

TOP_LEVEL_KEYS = ("notifiers", "defaults", "secrets")
"""The keys a policy file's top-level mapping may hold."""

LOADER_FIELDS = frozenset({"source_file", "source_line"})
"""Policy fields the loader fills in; a policy file may not set them."""

SECRET_FIELDS = tuple(name for name in Policy.model_fields if name not in LOADER_FIELDS)
"""The fields a secret under ``secrets:`` may set."""

DEFAULTABLE_FIELDS = tuple(name for name in SECRET_FIELDS if name != "name")
"""The fields ``defaults:`` may set for every secret of its file (all but the name)."""

DEFAULTABLE = frozenset(DEFAULTABLE_FIELDS)
""":data:`DEFAULTABLE_FIELDS` as a set, for subset tests."""

SCHEDULE_FIELDS = tuple(Schedule.model_fields)
"""The fields a ``schedule:`` block may set."""

ADAPTER_NAME_KEYS: dict[str, tuple[str, str | None]] = {
    "store": ("provider", None),
    "issuer": ("kind", "random"),
}
"""The key naming the adapter in each adapter block, and its default."""

EVERY_OR_CRON = frozenset({"every", "cron"})
"""A schedule's ``every`` and ``cron`` are one choice: a secret's choice replaces its default's."""
