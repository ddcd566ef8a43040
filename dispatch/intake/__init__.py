"""Intake: a grid report or a 12345 ticket becomes a case (validation, geocoding, photos)."""
