"""What a server store sends: one command listener that the server-engine tests switch on around
the calls they check. (PyMongo reports to a listener only from clients made after it was
registered: a test opens a store after importing this module.)"""

from __future__ import annotations

from contextlib import contextmanager

from pymongo import monitoring


class CommandLog(monitoring.CommandListener):
    def __init__(self):
        self.on = False
        self.commands: list[dict] = []

    def started(self, event):
        if self.on and event.command_name in ("find", "update", "delete", "insert"):
            self.commands.append(dict(event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    @contextmanager
    def recording(self):
        """The commands sent inside the block (the list fills as they are sent)."""
        self.commands, self.on = [], True
        try:
            yield self.commands
        finally:
            self.on = False

    def filters(self, collection: str) -> list[dict]:
        """The filter of each find, update and delete statement sent to `collection`."""
        out = []
        for command in self.commands:
            name = next(iter(command))
            if command.get(name) != collection:
                continue
            if name == "find":
                out.append(command.get("filter") or {})
            elif name in ("update", "delete"):
                out += [statement["q"] for statement in command.get(name + "s", ())]
        return out


COMMAND_LOG = CommandLog()
monitoring.register(COMMAND_LOG)
