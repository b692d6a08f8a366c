"""The `crosscheck` command line: one module per group of commands."""
