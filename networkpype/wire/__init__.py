"""The socket layer: one aiohttp WebSocket (:mod:`.connection`), its decoders, requests,
responses and processors, frame pacing. Below the actors that own it; imports only
:mod:`networkpype.protocol`."""
