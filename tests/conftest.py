"""Hypothesis profiles, chosen with HYPOTHESIS_PROFILE=ci|dev|deep (default: ci).

ci    bounded and reproducible: 60 examples, no deadline, derandomized, no example database.
dev   local iteration: 100 random examples, failing examples kept in .hypothesis/.
deep  long search before a release or after touching the primitives: 2000 random examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
