"""The messages, events and errors of networkpype, as pure data: no I/O, no asyncio, no
aiohttp, no pykka (a test checks the imports)."""

from networkpype.protocol import errors, events, messages, options, redaction

__all__ = ["errors", "events", "messages", "options", "redaction"]
