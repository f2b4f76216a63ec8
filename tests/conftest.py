"""Suite-wide settings."""

import os

from hypothesis import settings

# CI must not turn red on a run of the dice: there the examples are fixed (and still many); locally every
# run explores new ones. No deadline anywhere: a 2-core machine under load is not a failing property.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
