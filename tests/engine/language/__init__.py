"""A stand-in for the Pulumi Python language host ``pulumi-language-python``, for the end-to-end tests.

The Go module proxy does not serve the real host (``github.com/pulumi/pulumi/sdk/python/cmd/
pulumi-language-python/v3``), so ``scripts/pulumi-engine`` cannot build it. Without a language host the
CLI can run a program only through ``--client`` (the Automation API's inline path), which ``pulumi import``
and ``pulumi refresh``/``destroy`` do not offer. This plugin closes the gap with the SDK's own language
server, the one the Automation API uses for inline programs (``pulumi.automation._server.LanguageServer``):
the engine starts it from PATH as it starts the real host, and it runs the project's ``__main__.py`` in
its own process, with the configuration, stack and monitor the engine sends.

What it does not do that the real host does: create or select the virtualenv named in ``Pulumi.yaml``
(it runs on the interpreter it was started with, the project's ``.venv``), install dependencies,
generate code (``pulumi import --generate-code``, ``pulumi convert``), or run policy packs.
"""
