"""``python -m rotator``: the same as the ``rotator`` command."""

from rotator.cli.main import main

main()
