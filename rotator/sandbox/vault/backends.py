"""What each mounted backend holds: KV v2 keys and versions, AppRole, Kubernetes and JWT roles."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rotator.sandbox.vault.protocol import JSONDict


@dataclass
class KvVersion:
    """One version of a KV v2 secret."""

    data: JSONDict | None
    created_time: datetime
    deletion_time: datetime | None = None
    destroyed: bool = False


@dataclass
class KvKey:
    """A KV v2 key's metadata and versions (``KeyMetadata`` in the plugin)."""

    created_time: datetime | None = None
    updated_time: datetime | None = None
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None
    versions: dict[int, KvVersion] = field(default_factory=dict)


@dataclass
class KvStore:
    """A KV v2 mount: engine configuration and keys."""

    max_versions: int = 0
    cas_required: bool = False
    # None: unset; -1: disabled (a negative value was written); else seconds.
    delete_version_after: int | None = None
    keys: dict[str, KvKey] = field(default_factory=dict)


@dataclass
class TokenParams:
    """The ``token_*`` fields every auth method role carries (sdk/helper/tokenutil)."""

    policies: list[str] = field(default_factory=list)
    ttl: int = 0
    max_ttl: int = 0
    period: int = 0
    explicit_max_ttl: int = 0
    num_uses: int = 0
    no_default_policy: bool = False
    bound_cidrs: list[str] = field(default_factory=list)

    def copy(self) -> TokenParams:
        """An independent copy of a role's token fields."""
        return dataclasses.replace(
            self, policies=list(self.policies), bound_cidrs=list(self.bound_cidrs)
        )

    def as_data(self) -> JSONDict:
        """The fields as a role read returns them (``PopulateTokenData``)."""
        return {
            "token_bound_cidrs": list(self.bound_cidrs),
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "token_max_ttl": self.max_ttl,
            "token_no_default_policy": self.no_default_policy,
            "token_period": self.period,
            "token_policies": list(self.policies),
            "token_type": "default",
            "token_ttl": self.ttl,
            "token_num_uses": self.num_uses,
        }


@dataclass
class SecretId:
    """An AppRole secret id."""

    secret_id: str
    accessor: str
    num_uses: int
    ttl: int
    creation_time: datetime
    expiration_time: datetime | None
    last_updated_time: datetime
    metadata: dict[str, str]
    cidr_list: list[str]
    token_bound_cidrs: list[str]


@dataclass
class AppRole:
    """An AppRole role."""

    name: str
    role_id: str
    bind_secret_id: bool = True
    secret_id_bound_cidrs: list[str] = field(default_factory=list)
    secret_id_num_uses: int = 0
    secret_id_ttl: int = 0
    local_secret_ids: bool = False
    token: TokenParams = field(default_factory=TokenParams)
    secret_ids: dict[str, SecretId] = field(default_factory=dict)


@dataclass
class AppRoleStore:
    """An AppRole auth mount."""

    roles: dict[str, AppRole] = field(default_factory=dict)


@dataclass
class KubernetesRole:
    """A Kubernetes auth role."""

    name: str
    service_account_names: list[str]
    service_account_namespaces: list[str]
    audience: str = ""
    alias_name_source: str = "serviceaccount_uid"
    token: TokenParams = field(default_factory=TokenParams)


@dataclass
class KubernetesStore:
    """A Kubernetes auth mount."""

    config: JSONDict | None = None
    roles: dict[str, KubernetesRole] = field(default_factory=dict)


@dataclass
class JwtRole:
    """A JWT/OIDC auth role (``jwtRole`` in vault-plugin-auth-jwt)."""

    name: str
    role_type: str = "oidc"
    user_claim: str = ""
    bound_audiences: list[str] = field(default_factory=list)
    bound_subject: str = ""
    bound_claims: JSONDict = field(default_factory=dict)
    claim_mappings: dict[str, str] = field(default_factory=dict)
    allowed_redirect_uris: list[str] = field(default_factory=list)
    # Seconds; 0 means the plugin's default, a negative value no leeway at all.
    clock_skew_leeway: int = 0
    expiration_leeway: int = 0
    not_before_leeway: int = 0
    token: TokenParams = field(default_factory=TokenParams)


@dataclass
class JwtStore:
    """A JWT auth mount: its configuration (with the parsed public keys) and roles."""

    config: JSONDict | None = None
    #: The ``jwt_validation_pubkeys`` as cryptography public-key objects.
    public_keys: list[Any] = field(default_factory=list)
    roles: dict[str, JwtRole] = field(default_factory=dict)
