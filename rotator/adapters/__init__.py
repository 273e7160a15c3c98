"""The adapter SDK: what an adapter imports from rotator, besides :mod:`rotator.errors`.

An adapter (in ``providers/`` or a third-party distribution) imports from
here and from :mod:`rotator.errors`, and from nothing else of rotator. The
modules behind this face:

- :mod:`.roles`: the abstract ``Store``, ``Issuer``, ``Target``, ``Verifier``
  and ``Notifier``, each method saying what it raises;
- :mod:`.values`: what the roles exchange (``Credential``, ``Version``,
  ``Permission``, ``Alert``), the ``Runtime`` the engine lends, the
  ``ProviderConfig`` base of an adapter's policy fields, and what a check
  returns when it cannot prove anything (``Unchecked``, ``NothingToCheck``);
- :mod:`.discovery`: the registry that finds adapters through entry points
  (the engine's business; an adapter only declares its entry point);
- :mod:`.replica`: any store used as a target (the engine builds it);
- :mod:`.secret`: ``SecretValue``, a credential that never shows itself;
- :mod:`.durations`: the ``Duration`` type policy fields are written in;
- :mod:`.ratelimit`: client-side token buckets under a provider's quota
  (an adapter declares its quotas as ``Quota`` values and sets ``quotas``
  to their ``rates``, and the environment variables it reads, as
  ``Setting`` values, in ``settings``);
- :mod:`.shutdown`: processes an adapter started, ended when rotator stops
  (``at_shutdown(ender)``);
- :mod:`.permissions`: how a provider renders the least-privilege document
  of its system (``PermissionRenderer``, ``TokenScopes``);
- :mod:`.scanning`: how a provider tells its credentials in a leak report
  (``CredentialFormat``, ``LeakedPair``).

``redact`` (:mod:`rotator.output.redact`) is here too: an adapter registers
every secret it handles that rotator has not seen (a token it read, a
header it built) and scrubs every outside text it keeps.
"""

from rotator.adapters.durations import Duration
from rotator.adapters.permissions import PermissionRenderer, TokenScopes, notes
from rotator.adapters.ratelimit import Pacing, Quota, TokenBucket, limits, rates
from rotator.adapters.roles import Issuer, Notifier, Store, Target, Verifier
from rotator.adapters.scanning import CredentialFormat, LeakedPair
from rotator.adapters.secret import SecretValue
from rotator.adapters.shutdown import register as at_shutdown
from rotator.adapters.values import (
    OUTCOMES,
    USER_AGENT,
    Alert,
    AlertEvent,
    Credential,
    NothingToCheck,
    Permission,
    ProviderConfig,
    Runtime,
    Setting,
    Severity,
    StoreRef,
    Unchecked,
    Version,
)
from rotator.clock import Clock, Sleep
from rotator.output import redact

__all__ = [
    "OUTCOMES",
    "USER_AGENT",
    "Alert",
    "AlertEvent",
    "Clock",
    "Credential",
    "CredentialFormat",
    "Duration",
    "Issuer",
    "LeakedPair",
    "NothingToCheck",
    "Notifier",
    "Pacing",
    "Permission",
    "PermissionRenderer",
    "ProviderConfig",
    "Quota",
    "Runtime",
    "SecretValue",
    "Setting",
    "Severity",
    "Sleep",
    "Store",
    "StoreRef",
    "Target",
    "TokenBucket",
    "TokenScopes",
    "Unchecked",
    "Verifier",
    "Version",
    "at_shutdown",
    "limits",
    "notes",
    "rates",
    "redact",
]
