"""Command-line tools for operators of a deployment."""
