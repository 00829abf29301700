"""One module per ``uir`` subcommand; each parses its options and calls the public API."""
