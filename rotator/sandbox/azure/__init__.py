"""A protocol-faithful Azure Key Vault (secrets) emulator: real HTTPS, the real SDK unmodified.

No Key Vault can be reached from the machines this project is built on, so the project
carries this stand-in. It is a stdlib ``ThreadingHTTPServer`` on loopback, serving TLS with a
certificate from a CA that ``trustme`` makes at start-up, and it answers like Key Vault's
REST API (7.x) does, closely enough that the real ``SecretClient`` and ``azure-identity``
credentials work against it. The only client settings needed are
``verify_challenge_resource=False`` (the challenge names ``vault.azure.net``, not
``127.0.0.1``) and the CA bundle (``connection_verify=kv.ca_path``). It imports nothing from
Azure at import time.

Usage::

    from rotator.sandbox.azure import KeyVaultEmulator

    # host, port=0, tenant_id, clock, recoverable_days, soft_delete, purge_protection,
    # delete_delay=6.0, recover_delay=4.0
    with KeyVaultEmulator() as kv:
        client = SecretClient(vault_url=kv.vault_url, credential=kv.credential(),
                              verify_challenge_resource=False, connection_verify=kv.ca_path)
        kv.inject_fault("/secrets/app", status=429, retry_after=1)

``KeyVaultEmulator(...).start()`` / ``.stop()`` do the same as the context manager.
``kv.vault_url`` is ``https://127.0.0.1:PORT`` (``https://localhost:PORT`` works too);
``kv.ca_path`` is a PEM CA bundle in a temporary directory removed at ``stop()``;
``kv.identity_endpoint`` / ``kv.identity_header`` are an App Service style managed-identity
endpoint and its secret; ``kv.credential()`` is a ready azure-core ``TokenCredential``.
``clock`` is a callable returning an aware UTC datetime; every time the emulator shows or
checks (``created``, ``updated``, ``deletedDate``, ``scheduledPurgeDate``, automatic purges,
token issue and expiry, the end of a delete or a recovery) comes from it, so tests move time
instead of sleeping. From a shell, ``python -m rotator.sandbox.azure [--host H] [--port 8443]
[--tenant-id T] [--recoverable-days N] [--no-soft-delete] [--purge-protection]
[--delete-delay S] [--recover-delay S]`` prints ``export AZURE_KEYVAULT_URL=...``,
``export REQUESTS_CA_BUNDLE=...``, ``export IDENTITY_ENDPOINT=...`` and
``export IDENTITY_HEADER=...`` and serves until Ctrl-C or SIGTERM.

What is emulated
================

Transport
    HTTPS only (TLS 1.2+), certificate for ``localhost``, ``127.0.0.1`` and ``::1`` (and the
    bound host) signed by a CA made at start-up. A plain-HTTP client is hung up on; the SDK
    refuses ``http://`` vaults before sending anything anyway. JSON answers carry
    ``Content-Type: application/json; charset=utf-8``, ``Cache-Control: no-cache``,
    ``Pragma: no-cache``, ``Expires: -1``, ``x-ms-request-id`` and the echoed
    ``x-ms-client-request-id``, as Key Vault does. Ids are built from the request's ``Host``
    header (``https://{host}/secrets/{name}/{version}``), so the vault answers under any name
    the client used.

Authentication (Key Vault's challenge protocol)
    A request without a bearer token gets 401 ``Unauthorized`` ``AKV10000: Request is
    missing a Bearer or PoP token.`` with ``WWW-Authenticate: Bearer
    authorization="https://login.microsoftonline.com/{tenant}",
    resource="https://vault.azure.net"``. After that a token is required on every request:
    it must have been issued by this emulator (``credential()`` or the MSI endpoint), be for
    the vault's audience (``https://vault.azure.net`` or Key Vault's application id), be for
    the emulator's tenant, and be unexpired on the emulator clock. Otherwise the answer is
    401 with the challenge again and the real service's text: ``AKV10046: Unable to resolve
    the key used for signature validation.`` (unknown token), ``AKV10022: Invalid audience.
    ...``, ``AKV10032: Invalid issuer. ...``, or ``[TokenExpired] Error validating token:
    'S2S12086'.``. Tokens live ``3600`` seconds.

Request checks
    After authentication, ``api-version`` is required (400 ``BadParameter``) and any value is
    accepted. Object names
    must match ``^[0-9a-zA-Z-]{1,127}$`` (400 ``BadParameter`` ``The request URI contains an
    invalid name: X``) and are case-insensitive. Documented limits are enforced with 400
    ``BadParameter``: values up to 25 KB, ``contentType`` up to 255 characters, at most 15 tags
    of up to 512-character names and values, ``maxresults`` 1-25. A path no route serves is
    404; a known path with another verb is 405 with ``Allow``.

Secrets
    ``PUT /secrets/{name}`` (``value``, ``tags``, ``contentType``, ``attributes{enabled, nbf,
    exp}``; always a new version with a 32-hex id, current from then on);
    ``GET /secrets/{name}/`` and ``/secrets/{name}`` (latest) and ``/secrets/{name}/{version}``;
    ``PATCH /secrets/{name}/{version}`` (or ``/secrets/{name}/`` for the latest: ``enabled``,
    ``nbf``, ``exp``, ``tags``, ``contentType``; the answer has no value; ``updated`` moves);
    ``GET /secrets/{name}/versions`` (every version, without values; an unknown name is an
    empty 200 list, as Key Vault answers); ``GET /secrets`` (the latest version of each
    secret, ids without version, no values). Bundles carry ``id``, ``attributes{enabled, nbf,
    exp, created, updated, recoveryLevel, recoverableDays}`` with integer Unix seconds,
    ``tags`` and ``contentType`` when set. ``recoveryLevel`` is ``Recoverable+Purgeable`` for a
    90-day retention, ``CustomizedRecoverable+Purgeable`` for 7-89 days (with
    ``recoverableDays``), ``Purgeable`` without soft delete. Reading the value of a disabled
    version (or a disabled latest) is 403 ``Forbidden`` ``Operation get is not allowed on a
    disabled secret.`` with innererror ``SecretDisabled``. Expired and not-yet-valid secrets
    are served: ``exp`` and ``nbf`` are informational for secrets (about-secrets.md,
    "Date-time controlled operations"). A missing secret or version is 404 ``SecretNotFound``
    ``A secret with (name/id) X was not found in this key vault. ...``.

Soft delete
    ``DELETE /secrets/{name}`` deletes every version and answers a DeletedSecretBundle
    (``recoveryId``, ``deletedDate``, ``scheduledPurgeDate`` = deletion + ``recoverable_days``;
    the latest version's id and attributes; no value). ``GET /deletedsecrets/{name}``,
    ``GET /deletedsecrets`` (ids without version), ``DELETE /deletedsecrets/{name}`` (purge,
    204 without a body), ``POST /deletedsecrets/{name}/recover`` (200, the latest version's
    bundle without value; every version comes back). A name not among the deleted is 404
    ``SecretNotFound`` ``Deleted Secret not found: X``. Setting a deleted name is 409
    ``Conflict`` with innererror ``ObjectIsDeletedButRecoverable``. A deleted secret is purged
    automatically once the clock reaches its ``scheduledPurgeDate``. With
    ``soft_delete=False`` a delete is final and its answer has no ``recoveryId`` (so the SDK's
    delete poller completes at once).

Deletes and recoveries take time (on the emulator clock)
    As in Key Vault, a delete or a recover is accepted at once and completes later:
    ``delete_delay`` (default 6) and ``recover_delay`` (default 4) seconds of the emulator
    clock afterwards, checked on each request. Until a delete completes the secret is neither
    active nor among the deleted: ``GET /secrets/{name}/`` and ``GET /deletedsecrets/{name}``
    are 404 (the SDK's delete poller keeps polling the latter), it is in neither list, and a
    set, a purge or a recover of the name is 409 ``Conflict`` ``Secret is currently being
    deleted.`` with innererror ``ObjectIsBeingDeleted``. Until a recover completes
    ``GET /secrets/{name}/`` is 404 (what the SDK's recover poller waits on) while the deleted
    entry stays (``GET /deletedsecrets/{name}`` 200, and listed), and a set, a purge or a
    second recover is 409 ``Conflict`` ``Secret is currently being recovered.`` with innererror
    ``ObjectIsBeingRecovered``. A second delete of a name being deleted is 404. Tests move the
    clock; zero delays make both complete by the next request (``rotator sandbox`` uses
    that, as the demo runs on the wall clock).

Purge protection (``purge_protection=True``, needs soft delete)
    ``recoveryLevel`` drops its ``+Purgeable`` (``Recoverable`` for a 90-day retention,
    ``CustomizedRecoverable`` for 7-89 days) in every answer, the delete's and the deleted
    secrets' included (where a client learns that a purge would be refused). A purge is 403
    ``Forbidden`` ``Operation "purge" is not allowed because purge protection is enabled for
    this vault. Key Vault service will automatically purge it after the retention period has
    passed.``, so a deleted secret can only be recovered, or wait for the vault's own purge at
    ``scheduledPurgeDate``.

Paging
    Lists answer ``{"value": [...], "nextLink": url-or-null}``. ``nextLink`` is absolute, built
    from the ``Host`` header, and keeps the request's ``api-version`` and ``maxresults`` and a
    ``$skiptoken`` continuation. Secrets and deleted secrets are ordered by upper-cased name,
    versions by version id, which is not their age (Lowkey Vault reports that Key Vault lists
    them in that order).

Managed identity (App Service protocol, ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``)
    Plain HTTP on a second loopback port: ``GET /msi/token?api-version=2019-08-01&resource=R``
    with ``X-IDENTITY-HEADER: kv.identity_header`` answers ``{"access_token", "expires_on":
    "<epoch string>", "resource", "token_type": "Bearer", "client_id"}``; ``client_id`` (and
    ``principal_id``, ``mi_res_id``) are accepted. A missing header is 400, a wrong one 401, a
    missing ``resource`` or another ``api-version`` 400, each as ``{"statusCode", "message",
    "correlationId"}``. ``ManagedIdentityCredential()`` picks it up from the environment.

Fault injection
    ``inject_fault(path_prefix, status=429, retry_after=None, delay=0.0, count=1,
    method=None)``: the next ``count`` authenticated requests whose decoded path starts with
    ``path_prefix`` (and whose verb is ``method``, if given) wait ``delay`` seconds, then get
    ``status`` with Key Vault's error envelope (429 ``Throttled`` with the real service's
    text, 500 ``InternalServerError``, 503 ``ServiceUnavailable``) and ``Retry-After`` when
    ``retry_after`` is set, or, when ``status`` is None, are served normally.

API Management (``kv.apim``)
    On the same HTTPS port: ARM's calls on an APIM subscription's keys (``GET`` the
    subscription, ``POST .../regeneratePrimaryKey``, ``.../regenerateSecondaryKey``,
    ``.../listSecrets``) on their real paths, with ARM's bearer authentication (a token this
    emulator issued for ``https://management.azure.com``; no challenge round trip) and ARM's
    error envelope and codes, plus a gateway (``/apim/{service}/...``) that lets a current key
    of an active subscription in. Seed with ``kv.apim.add_subscription(service, sid, ...)``;
    faults use ``inject_fault`` with the ARM path (``kv.apim.resource_path(...)``). See
    ``rotator.sandbox.azure.apim`` for what is emulated and how it diverges.

Concurrency
    One thread per connection; the vault's state sits behind one lock, so every request sees
    and leaves a consistent vault.

Inspection
    ``kv.request_log`` holds the last 10,000 requests the vault answered (method, decoded path,
    query, whether ``Authorization`` was sent, body length, status), oldest first, recorded
    before the answer is sent; a connection that fails TLS leaves no entry.
    ``kv.identity_port`` is the MSI endpoint's port.

Known divergences from real Key Vault
=====================================

- Authentication is simulated. Real Key Vault validates AAD-signed JWTs (signature, issuer,
  audience, lifetime with some clock-skew tolerance) and then authorizes the caller (access
  policies or RBAC, firewall, private endpoints). The emulator issues JWT-shaped tokens whose
  signature is random and accepts only tokens it issued itself (a table lookup), with no
  clock-skew tolerance. Any accepted token may do anything: there are no 403
  ``ForbiddenByPolicy``/``ForbiddenByRbac`` answers and no CAE claims challenges.
- Token ``expires_on`` (from ``credential()`` and the MSI endpoint) is on the emulator clock,
  like every other time it shows. ``credential()`` mints a fresh token on each call, so after
  the clock moves past a token's life the SDK recovers through the challenge. A credential
  that caches by wall time (``ManagedIdentityCredential``, through MSAL) keeps presenting a
  token the emulator clock has expired, and then fails with ``ClientAuthenticationError``.
- The challenge names ``login.microsoftonline.com``; the real service often names
  ``login.windows.net``. The SDK takes the tenant from either.
- Any ``api-version`` is accepted and every version gets the same (7.x) answers. The real
  service refuses unknown versions with 400 ``BadParameter``.
- Deletes and recoveries take a fixed time (``delete_delay``, ``recover_delay``: 6 and 4
  seconds by default, the order the real service was seen to take); Key Vault's times vary
  from request to request. The 409 while a delete is under way (code, inner code and text)
  matches recorded answers to a purge; that a set and a recover get the same answer is
  assumed. The 409 while a recovery is under way uses the real inner code
  ``ObjectIsBeingRecovered``; its text, and which calls get it, are assumed by analogy. A
  second delete while one is under way is 404 here; the real answer was not seen.
- Automatic purges happen exactly at ``scheduledPurgeDate`` (checked on each request); Key
  Vault purges some time after it.
- The purge-protection 403 has the real code and text, but the real text goes on with
  ``Vault: NAME;location=REGION`` and may carry an innererror (not seen); a purge of a name
  that is not deleted is 404 before purge protection is considered (an assumption). Only the
  vault-level setting is emulated (no ``Recoverable+ProtectedSubscription``), fixed at start:
  an operator can turn purge protection on in a live vault, and the ``recoveryLevel`` Key
  Vault then reports for a secret deleted before was not verified. The azure-keyvault store
  skips the purge on that level (and only logs a purge refused anyway).
- With ``soft_delete=False`` the ``/deletedsecrets`` routes answer 404 or an empty list; legacy
  vaults without soft delete may answer differently.
- Names are case-insensitive and the casing of the first write is kept in ids and lists; how
  Key Vault shows a name rewritten with another casing was not verified.
- Skip tokens are the emulator's own (base64 JSON with a ``NextMarker``); they are opaque to
  clients anyway. Real ``nextLink`` values spell the port (``:443``) and carry the service's
  own ``api-version``; the SDK replaces that with its own when it follows the link.
- Texts checked against real responses: ``SecretNotFound`` (both forms), ``Forbidden`` with
  ``SecretDisabled``, ``Conflict`` with ``ObjectIsDeletedButRecoverable``, ``Conflict`` with
  ``ObjectIsBeingDeleted`` (for a purge), the purge-protection ``Forbidden``, ``BadParameter``
  for an invalid name, the five 401 texts above, and 429 ``Throttled``. The texts for a
  missing ``api-version``, malformed bodies, the size limits, ``maxresults``, skip tokens,
  unknown routes (404 ``NotFound``), 405 ``MethodNotAllowed``, injected 500/503 and the MSI
  endpoint's errors (and their 400/401 statuses) are the emulator's own wording.
- Getting a deleted secret whose latest version is disabled is answered (there is no value in
  it); whether Key Vault answers 403 there was not verified.
- Not emulated: backup and restore (``/secrets/{name}/backup``, ``/secrets/restore`` are 404),
  keys, certificates and certificate-backed secrets (``kid``, ``managed``),
  ``outContentType``, ``previousVersion``, Event Grid events, vault management (ARM; only
  API Management subscription keys are), and real throttling (only injected). Only the
  headers listed above are sent (no ``x-ms-keyvault-region`` or
  ``x-ms-keyvault-network-info``).
- The MSI endpoint issues a token for any ``resource`` (the vault then refuses a foreign
  audience with ``AKV10022``), does not check ``client_id``/``principal_id``/``mi_res_id``
  against any identity, and reports a fixed client id for the system-assigned identity.
- Faults apply only to requests that pass authentication, so a fault's ``count`` means
  operations whether or not the client's challenge cache is warm.
- TLS comes from a fresh private CA at every start; real vaults use publicly trusted
  certificates.
"""

from rotator.sandbox.azure.server import KeyVaultEmulator

__all__ = ["KeyVaultEmulator"]
