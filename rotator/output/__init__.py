"""What leaves the process: secrets scrubbed, text escaped, files written whole, logs.

Every text rotator sends out (a log line, an error, a summary, an export)
passes through here: :mod:`.redact` masks every secret value the process has
seen, :mod:`.escaping` makes outside text inert in the format it goes into,
:mod:`.files` replaces a file whole, and :mod:`.logs` is the structlog
pipeline built from them. Nothing here knows a policy or a rotation.
"""
