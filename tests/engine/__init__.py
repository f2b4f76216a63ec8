"""Tests and helpers that run the real Pulumi engine."""
