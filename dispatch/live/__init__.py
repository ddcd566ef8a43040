"""Publish: case events and their delivery to WebSocket clients."""
