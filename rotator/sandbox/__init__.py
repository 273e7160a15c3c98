"""Local stand-ins for the outside world: emulators, fake servers, and sandboxes.

One folder per service, holding what that service needs of these three:

- an emulator or fake server (its server and state): Vault, Azure Key Vault
  and API Management, Kubernetes, and GitHub's and GitLab's REST APIs (the
  last two for the tests only); AWS has none of its own (moto_server
  stands in), and PostgreSQL is no emulator but the installed server, run
  throwaway in a directory of its own (``postgresql/server.py``);
- a ``__main__`` where it can be served from a shell: ``python -m
  rotator.sandbox.vault``, ``.azure``, ``.kubernetes`` only;
- a ``sandbox`` module where ``rotator sandbox`` starts and seeds it: AWS,
  Vault, Azure, Kubernetes and PostgreSQL (the ``rotator.sandboxes``
  entry points).

They stand on a shared :mod:`.core` (loopback HTTP and TLS serving, fault
plans, request logs, the clock) and never import one another; :mod:`.run`
is ``rotator sandbox``, whole rotations against them. The engine and the
adapters never import this package (import-linter contracts); the
``sandbox`` command and the tests do.
"""
