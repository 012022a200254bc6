"""networkpype: actor-supervised WebSocket connections for long-running programs."""

__version__ = "0.1.0"
