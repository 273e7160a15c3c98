"""Local stand-ins for the outside world: emulators, fake servers, and sandboxes.

One folder per service (``vault``, ``azure``, ``kubernetes``, ``github``,
``gitlab``, ``aws``, ``postgresql``), each of one shape: the emulator (its
server and state), its ``__main__`` where it can be served from a shell
(``python -m rotator.sandbox.vault``, ``.azure``, ``.kubernetes``), and its
``sandbox`` module where ``rotator sandbox`` seeds it (Vault, Key Vault, and
AWS, whose emulator is moto_server). PostgreSQL is no emulator: the installed
server, run throwaway in a directory of its own. They stand on a shared
:mod:`.core` (loopback HTTP and TLS serving, fault plans, request logs, the
clock) and never import one another; :mod:`.run` is ``rotator sandbox``,
whole rotations against them. The engine and the adapters never import this
package (import-linter contracts); the ``sandbox`` command and the tests do.
"""
