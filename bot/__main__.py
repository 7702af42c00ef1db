"""``python -m bot`` runs the ``archivist`` command."""

from bot.cli import main

main()
