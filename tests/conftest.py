"""Test-wide settings. ``HYPOTHESIS_PROFILE=thorough scripts/test`` runs the property tests
with many more examples (minutes instead of seconds), for fuzzing sessions."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", max_examples=300, deadline=None)
settings.register_profile("thorough", max_examples=20_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
