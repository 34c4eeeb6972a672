"""Generators of checked-in artifacts (the SDK methods and errors, docs/api.md), each with a test that fails when its output drifts."""
