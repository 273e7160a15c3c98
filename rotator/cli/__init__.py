"""The command line: one module per command group, thin over the engine.

:mod:`.main` holds the ``rotator`` group and the rotation commands;
:mod:`.audit`, :mod:`.leaks` and :mod:`.permissions` their own groups;
:mod:`.common` the options, consoles and engine construction they share.
"""
