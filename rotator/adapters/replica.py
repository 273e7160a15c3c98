"""Any store used as a target: the value replicated to another vault or cloud."""

from __future__ import annotations

from typing import Any

from rotator.adapters.roles import Store, Target
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Permission, ProviderConfig


class StoreReplica(Target[ProviderConfig]):
    """Any store used as a target: the value replicated to another vault or cloud.

    ``write`` stores the value as pending and promotes it at once (the
    replica's consumers read its current version); ``restore`` discards a
    pending version never promoted, or writes ``previous`` back as a new
    current version when the replica already carries ``written``;
    ``retire`` retires the version ``write`` replaced, as the store's own
    old version is at revoke (a store that cannot tell which keeps it).
    Every method raises what the store's methods it calls raise.
    """

    kind = "store"
    Config = ProviderConfig

    def __init__(self, store: Store[Any]) -> None:
        super().__init__(store.config, store.runtime, store.secret)
        self.store = store

    def describe(self) -> str:
        """Return the replica store's address."""
        return self.store.describe()

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Store ``value`` in the replica under the rotation id and make it current."""
        self.store.put_pending(rotation_id, value)
        self.store.promote(rotation_id)

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Put ``previous`` back as the replica's current value if ``written`` had replaced it."""
        if self.store.pending(rotation_id) is not None:
            self.store.discard(rotation_id)
        current = self.store.current()
        if current is None or written is None or current.value != written:
            return
        if previous is None:
            # A replica has no "no value" state; the new value stays until
            # the next rotation (it is revoked at the issuer all the same).
            return
        undo = f"{rotation_id}-undo"
        self.store.put_pending(undo, previous)
        self.store.promote(undo)

    def retire(self, rotation_id: str) -> None:
        """Retire the replica's version this rotation replaced, as the store retires its own."""
        replaced = self.store.replaced_version(rotation_id)
        if replaced is not None:
            self.store.retire(replaced)

    def permissions(self) -> list[Permission]:
        """Return the replica store's permissions (it is written as the store is)."""
        return self.store.permissions()

    def check(self) -> str:
        """Read the replica's current version (proves it exists and can be read)."""
        current = self.store.current()
        return "readable" + ("" if current is not None else " (no value yet)")
