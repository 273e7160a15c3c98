"""A protocol-faithful HashiCorp Vault emulator: real HTTP, the subset of Vault's API rotator uses.

The tests run against both this emulator and a real OpenBao server
(:mod:`rotator.sandbox.vault.openbao`); the emulator stays for what a real
server cannot do there (a moved clock, injected faults) and stands in for
``rotator sandbox`` where OpenBao is not installed. A differential test
(``tests/providers/vault/test_conformance.py``) holds the two together.

It is a stdlib ``ThreadingHTTPServer`` on loopback that answers like Vault
does, closely enough that the real ``hvac`` client cannot tell the difference.
It imports nothing outside the standard library, except PyJWT and
cryptography, imported only when the ``jwt`` auth method is configured or
logged in with (to verify signatures).

Usage::

    from rotator.sandbox.vault import VaultEmulator

    with VaultEmulator() as vault:  # host="127.0.0.1", port=0, root_token=None, clock=None
        client = hvac.Client(url=vault.url, token=vault.root_token)
        vault.inject_fault("/v1/secret/data/app", status=503, count=1)

``VaultEmulator(...).start()`` / ``.stop()`` do the same as the context
manager. ``clock`` is a callable returning an aware UTC datetime; every TTL,
expiry and ``deletion_time`` is computed from it, so tests move time instead of
sleeping. From a shell, ``python -m rotator.sandbox.vault [--host 127.0.0.1]
[--port 8200] [--root-token T]`` prints ``export VAULT_ADDR=...`` and
``export VAULT_TOKEN=...`` and serves until Ctrl-C or SIGTERM.

What is emulated
================

At start: KV version 2 at ``secret/``, the token store at ``auth/token/``,
AppRole at ``auth/approle/``, Kubernetes at ``auth/kubernetes/``, the
``default`` policy as current Vault writes it, and a root token (policy
``root``, never expires; ``hvs.`` plus 24 characters unless one is given).

HTTP layer
    The success envelope (``request_id``, ``lease_id``, ``renewable``,
    ``lease_duration``, ``data``, ``wrap_info``, ``warnings``, ``auth``, plus
    ``mount_type`` as Vault 1.12+ sends it); errors as ``{"errors": [...]}``
    with ``Content-Type: application/json`` exactly; 204 with no body where
    Vault answers 204 (still ``Content-Type: application/json``, as Vault's
    ``respondOk`` sets it first); the token in ``X-Vault-Token`` or
    ``Authorization: Bearer``; the ``LIST`` verb and ``GET ?list=true``;
    ``//`` collapsed; query parameters as request data for GET, LIST and
    DELETE; ``PATCH`` only with ``application/merge-patch+json`` (else 415).
    The answers of Vault's fixed list of ``sys/`` routes
    (``injectDataIntoTopRoutes``: ``sys/mounts``, ``sys/auth``,
    ``sys/policy``, ``sys/capabilities*``... matched on the URL path) also
    repeat their ``data`` at the top level; no other answer does.
    Error texts follow Vault: messages a backend answers with
    ``ErrorResponse`` are sent verbatim, Go errors wrapped the go-multierror
    way (``"1 error occurred:\\n\\t* ...\\n\\n"``). An unknown, expired or
    revoked token (or none) is 403 ``permission denied``; a path under no
    mount is 404 ``no handler for route "..." . route entry not found.``; an
    unknown path in a mount is 404 ``unsupported path``; a known path without
    the operation is 405; an ``X-Vault-Namespace`` naming no namespace is 404
    ``namespace not found``, before any token check.

KV v2 (``/v1/{mount}/config|data|metadata|delete|undelete|destroy/...``)
    Versions; ``options.cas`` (0 = create only; a mismatch, a missing cas when
    ``cas_required`` is set on the engine or the key, and an unparseable cas
    give Vault's three 400 messages); ``max_versions`` pruning (0 means 10,
    the larger of the engine's and the key's value applies, ``oldest_version``
    advances); ``delete_version_after`` (the smaller non-zero of engine and
    key, a future ``deletion_time``, negative on the engine disables it);
    reads of deleted or destroyed versions are 404 with the full envelope
    (``data.data`` null plus ``data.metadata``, no ``errors``), a missing key
    or version is 404 ``{"errors":[]}``; metadata read/write (204)/delete;
    LIST (an empty result is 404); soft delete of the latest version (DELETE
    data) or of listed versions, undelete, destroy; custom_metadata with
    Vault's validation; HTTP PATCH as a JSON merge patch. Timestamps are RFC
    3339 in UTC with Go's trimmed fractional seconds and ``Z``; unset is ``""``.

Token store (``auth/token/``)
    ``create`` and ``create-orphan`` (policy subset rule without sudo,
    ``default`` added unless ``no_default_policy``, inheritance of the parent's
    policies, root children without TTL that never expire, ``ttl``,
    ``explicit_max_ttl``, ``period`` (sudo), ``no_parent`` (sudo), custom
    ``id`` (sudo), ``meta``, ``display_name`` as ``token-<name>``,
    ``num_uses``, ``renewable``, warnings for unknown policies);
    ``lookup-self``, ``lookup``, ``lookup-accessor`` (``id`` blanked);
    ``renew-self``, ``renew``, ``renew-accessor`` (Vault's ``CalculateTTL``:
    increment, system default 768h, max TTL, explicit max TTL, periodic tokens
    reset to their period, capping warnings); ``revoke-self``, ``revoke``,
    ``revoke-accessor`` (an unknown accessor is a 200 warning),
    ``revoke-orphan`` (sudo); ``LIST accessors`` (sudo). The three ``-self``
    paths are served in the token's own namespace, whatever namespace the
    request names.
    Revoking or expiring a token revokes its non-orphan children; a token
    whose ``num_uses`` runs out is revoked after its last request.

AppRole (``auth/{mount}/``)
    ``role/:name`` create/update/read/delete and LIST ``role`` (token fields
    ``token_policies``, ``token_ttl``, ``token_max_ttl``, ``token_period``,
    ``token_num_uses``, ``token_explicit_max_ttl``, ``token_no_default_policy``
    and their legacy names; ``bind_secret_id``, ``secret_id_bound_cidrs``,
    ``secret_id_num_uses``, ``secret_id_ttl``; the "at least one constraint"
    rule); ``role-id`` read and set; ``secret-id`` generate (metadata as a
    JSON-string map, ``cidr_list``, ``token_bound_cidrs``, ``num_uses``,
    ``ttl``) and LIST (accessors); ``custom-secret-id``; ``secret-id/lookup``
    and ``/destroy``; ``secret-id-accessor/lookup`` (a missing accessor is a
    full-envelope 404, as since Vault 1.9) and ``/destroy`` (a missing one is
    Vault's 500); ``login`` (``invalid role or secret ID``, a missing
    ``role_id`` a 500 as Vault's alias lookahead makes it, use counts, CIDR
    checks against the client address, ``metadata.role_name``, display name
    from the mount path). An expired secret id no longer logs in and looks
    up as a 204, but stays stored and listed until the periodic tidy, which
    Vault runs once a minute (here: a minute after its expiry). Login tokens
    are orphans; renewals re-read the role's
    ``token_ttl``/``token_max_ttl``/``token_period``.

Kubernetes (``auth/{mount}/``)
    ``config`` (stored), ``role/:name`` (``bound_service_account_names``,
    ``bound_service_account_namespaces`` with ``*`` and prefix/suffix globs,
    ``audience``, ``alias_name_source`` and the token fields), LIST ``role``,
    and ``login`` with ``{role, jwt}``: the service account is read from the
    legacy ``kubernetes.io/serviceaccount/*`` claims or the projected
    ``kubernetes.io`` nested claim, and checked against the role's bindings
    with the plugin's 403 messages; ``exp``/``nbf`` are checked against the
    clock, ``iss`` when ``disable_iss_validation`` is false, ``aud`` when the
    role sets ``audience``.

JWT (``auth/{mount}/``, enabled with ``sys/auth/:path`` type ``jwt``)
    ``config`` (``jwt_validation_pubkeys``: PKIX public keys or certificates,
    parsed when written; ``bound_issuer``, ``jwt_supported_algs``,
    ``default_role``; exactly one key source, as the plugin requires),
    ``role/:name`` (``role_type`` jwt/oidc, ``user_claim``,
    ``bound_audiences``, ``bound_subject``, ``bound_claims`` matched exactly,
    ``claim_mappings``, the three leeways and the token fields; the "at least
    one bound constraint" rule), LIST ``role``, and ``login`` with ``{role,
    jwt}``: the signature must verify against a configured key with an
    allowed algorithm (never ``none``), then hashicorp/cap's checks (``iss``,
    ``sub``, ``aud`` intersecting ``bound_audiences``, an ``aud`` with no
    bound audience refused, ``nbf``/``exp``/``iat`` on the clock with 60s of
    skew), the user claim, and ``bound_claims``, each refusal a 400 with the
    plugin's message. The token carries ``metadata.role`` (plus mapped
    claims), display name ``<mount>-<user claim>`` and an entity per user
    claim value.

System (``sys/``)
    ``tools/random[/:source][/:bytes]`` (``bytes``, ``format`` base64|hex);
    ``mounts`` (GET list, GET/POST/DELETE ``mounts/:path``, GET
    ``mounts/:path/tune``; conflicts are 400 ``path is already in use at
    ...``); ``auth`` likewise (``auth/*`` needs sudo, as in Vault);
    ``policies/acl`` (LIST, GET, PUT/POST, DELETE; ``root`` listed in the root
    namespace; ``root`` immutable and ``default`` undeletable) and the legacy
    ``policy`` endpoints (``rules``); ``capabilities-self``,
    ``capabilities``, ``capabilities-accessor``; ``namespaces`` (LIST,
    GET/POST/DELETE ``namespaces/:path``); ``health`` and ``seal-status``
    (unauthenticated, not enveloped; HEAD works for health).

ACL policies
    Enforced for every non-root token. HCL (comments, blocks, lists, the
    legacy ``policy = "read"`` form) or JSON. Matching follows
    ``vault/acl.go``: exact paths first, then the longest ``*`` glob and the
    ``+`` segment-wildcard rules ranked like Vault (first wildcard position,
    non-glob over glob, fewer ``+``, longer); several policies naming one path
    add up, ``deny`` overrides. The capability a request needs comes from its
    operation: GET read, LIST list, DELETE delete, PATCH patch, and POST/PUT
    ``create`` or ``update`` chosen by Vault's existence check (KV v2 data and
    metadata paths: whether the key exists; AppRole, Kubernetes and JWT
    ``role/:name``: whether the role exists; every other path, as in Vault,
    ``update``). Root-protected paths (``auth/token/accessors``,
    ``auth/token/revoke-orphan``, ``sys/auth/*``) also need ``sudo``. A
    denial is 403 ``"1 error occurred:\\n\\t* permission denied\\n\\n"``.

Namespaces (Vault Enterprise)
    From ``X-Vault-Namespace`` and/or a path prefix (``/v1/team-a/secret/...``);
    the longest existing namespace wins and the rest of the path is routed in
    it. Each namespace has its own mounts, auth methods, policies and tokens;
    a new one gets ``sys/``, ``auth/token/`` and ``default`` (no ``secret/``,
    as in Vault). Tokens work in their namespace and its descendants, so the
    root token works everywhere; child-namespace token ids and accessors end
    in ``.<namespace id>`` like Vault's.

Fault injection
    ``inject_fault(path_prefix, status, delay, count, method, retry_after)``:
    the next ``count`` requests whose path (``//`` collapsed) starts with
    ``path_prefix`` (and whose verb is ``method``, if given) wait ``delay``
    seconds, then get ``status`` with Vault's error envelope (503 says
    ``Vault is sealed``, 500 ``internal error``, 429 what a rate-limit
    quota answers, ``request path "<path>": rate limit quota exceeded``),
    with a ``Retry-After`` header when ``retry_after`` is given (seconds, as
    Vault sends it when the quota has ``enable_rate_limit_response_headers``,
    or any text, such as the HTTP date older versions sent), or, when
    ``status`` is None, are served normally. ``clear_faults()`` drops the
    faults still waiting.

Known divergences from real Vault
=================================

- Kubernetes login never calls the TokenReview API and never verifies the
  JWT's signature (not even against configured ``pem_keys``): it decodes the
  payload and trusts its claims. Any well-formed JWT with the right claims
  logs in; a revoked service-account token still works.
- Token ids are ``hvs.`` plus 24 characters (the size of a dev-mode root
  token), not the ~95-character service tokens of Vault 1.10+; accessors are
  24 characters. Batch tokens, token roles (``auth/token/create/:role``,
  ``auth/token/roles``), entity aliases and response wrapping
  (``X-Vault-Wrap-TTL`` is refused with 400) are not supported.
- Time: everything expires at its deadline inclusive (tokens, secret ids,
  ``deletion_time``); Vault expires strictly after it. With a real clock the
  two cannot be told apart; with a frozen test clock a soft delete takes
  effect at once. The tidy of expired AppRole secret ids happens a minute
  after each expiry; Vault's runs once a minute, so there one can go
  sooner. Times in token lookups (``issue_time``, ``expire_time``, ``last_renewal``) are UTC with
  ``Z``; Vault prints the server's local offset.
- Identity: logins get a stable ``entity_id`` per mount and alias, but there
  is no identity API, so identity policies, groups and templated policy paths
  (``{{identity.entity.id}}``) never apply.
- ACL: ``allowed_parameters``, ``denied_parameters``,
  ``required_parameters``, ``min/max_wrapping_ttl``, control groups, MFA and
  Sentinel are parsed past and ignored, so such policies are more permissive
  here. HCL heredocs are not parsed.
- Token ``bound_cidrs`` (token store and ``token_bound_cidrs`` on AppRole)
  are stored but not enforced when the token is used; the emulator serves
  loopback clients anyway. AppRole ``secret_id_bound_cidrs`` and
  ``cidr_list`` are enforced at login.
- KV: only version 2 can be mounted (``type: kv`` with ``options.version:
  "2"``, or ``kv-v2``); other engine types are refused as ``plugin not found
  in the catalog``. Not emulated: ``subkeys``, metadata ``PATCH``,
  ``exclude_deleted`` on LIST, and the ``created_by``/``deleted_by``/
  ``last_updated_by`` attribution fields of newer Vault. Mount tuning is
  read-only and reports the system TTLs.
- JWT auth validates with static ``jwt_validation_pubkeys`` only: no JWKS
  URL, OIDC discovery or OIDC browser flow; ``bound_claims_type`` ``glob``,
  JSON-pointer claim names and ``groups_claim`` are not supported.
- Only ``approle``, ``kubernetes`` and ``jwt`` auth methods can be enabled. The
  ``sys/health`` version is a fixed ``1.17.0+ent`` (namespaces are an
  Enterprise feature); there is no seal, HA, replication, audit, leases on
  secrets, ``cubbyhole/`` or ``identity/`` mount.
- A token's last allowed use shows ``num_uses`` 0 in a lookup made with it;
  Vault shows -1 (revocation pending).
- JSON is written compactly by Python: non-ASCII is escaped (``\\uXXXX``) and
  ``<``, ``>``, ``&`` are not, the reverse of Go's encoder; both are valid
  JSON and decode to the same values.
"""

from rotator.sandbox.vault.server import VaultEmulator

__all__ = ["VaultEmulator"]
