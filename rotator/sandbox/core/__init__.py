"""The shared core of the emulators: what two or more of them need, and nothing of a service.

:mod:`.http` binds and serves on loopback (server, handler base, lifecycle), :mod:`.tls`
serves HTTPS, :mod:`.faults` keeps the faults a test injects, :mod:`.recording` the requests
received, :mod:`.jsonapi` is the recording JSON API the GitHub and GitLab fakes build on,
:mod:`.clock` the injectable time and :mod:`.shell` serving from a shell until Ctrl-C.

Standard library only. Each emulator lives in its own folder next to this package and
imports from it, never from another emulator (an import-linter contract).
"""
