"""One module per popctl command: ``add_arguments``, ``parse`` (typed options), ``run`` (see popctl.cli)."""
