"""crosscheck stream worker, rules, commands and CLI."""
