"""Rate-limit arithmetic, pure: the declarations (:mod:`.rate_limit`) and the reservation
book (:mod:`.core`) the throttler actor keeps. Imports only :mod:`networkpype.protocol`."""
