"""Pulumi components of pop3-oauth, and below them the Pulumi-free pieces they use."""
