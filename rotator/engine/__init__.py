"""The engine: decides what is due and drives each rotation through the lifecycle.

:mod:`.runner` holds the :class:`~rotator.engine.runner.Engine`, which wires
the rest: :mod:`.plan` says what is due as pure functions of what the engine
gathers; :mod:`.driver` takes a secret's rotations through their steps under
its lease; :mod:`.steps` runs each step (one table of handlers), with
:mod:`.grace` deciding about an old credential still in use; :mod:`.retry`
retries transient failures; :mod:`.trust` checks the audit chain before
acting; :mod:`.report` holds plan items and outcomes; :mod:`.alerts` tells
people through their notifiers; :mod:`.concurrency` bounds parallel work;
:mod:`.preflight` is ``rotator check``; :mod:`.faults` holds the crash points
the crash-safety tests arm. It knows no command line, no service loop and no
provider SDK.
"""
