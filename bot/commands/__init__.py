"""The ``archivist`` subcommands, one module per group; :mod:`bot.cli` assembles them."""
