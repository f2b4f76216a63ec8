"""Pulumi components of pop3-oauth, the settings and rotation schedule they use, the Exchange resources.

The Pulumi-free Microsoft clients and rules they build on are in :mod:`mscloud`.
"""
