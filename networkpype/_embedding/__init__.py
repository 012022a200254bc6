"""The implementation of :mod:`networkpype.embedding`; import the public names from there."""

__all__: list[str] = []
