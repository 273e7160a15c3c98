"""Local stand-ins for the outside world: emulators, fake servers, and sandboxes.

One folder per service (``vault``, ``azure``, ``kubernetes``, ``github``,
``gitlab``, ``aws``) on a shared :mod:`.core` (loopback HTTP servers and
fault plans); :mod:`.run` is ``rotator sandbox``, whole rotations against
them. The engine and the adapters never import this package (an
import-linter contract); the ``sandbox`` command and the tests do.
"""
