"""Demo traffic for the demo city (python server.py --simulate); not part of the core."""
