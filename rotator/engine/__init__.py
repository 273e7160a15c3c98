"""The engine: decides what is due and drives each rotation through the lifecycle.

:mod:`.runner` plans and runs rotations over the journal and the adapters;
:mod:`.alerts` tells people through their notifiers; :mod:`.concurrency`
bounds parallel work; :mod:`.preflight` is ``rotator check``; :mod:`.faults`
holds the crash points the crash-safety tests arm. It knows no command line,
no service loop and no provider SDK.
"""
