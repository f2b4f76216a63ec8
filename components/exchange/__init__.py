"""Exchange Online as code: two dynamic resources (``resources``) and their providers (``providers``).

The Pulumi-free client, token sources and permission rules they use are in :mod:`mscloud`. Importing this
package loads nothing: ``components.exchange.providers`` is the module path pickled into every stack's state,
so import the module you need.
"""
