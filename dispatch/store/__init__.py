"""Store: the only package that speaks to the database (repositories over the engines)."""
