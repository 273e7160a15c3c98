"""The command line: one module per command group, thin over the engine and the reports.

:mod:`.main` holds the ``rotator`` group and wires in :mod:`.validate`,
:mod:`.rotation` (plan, run, rotate, check), :mod:`.state` (status, history,
db upgrade), :mod:`.audit`, :mod:`.leaks`, :mod:`.permissions` and
:mod:`.sandbox`; :mod:`.options` holds the options every command takes and
builds the engine from them, :mod:`.console` where and how commands print.
"""
