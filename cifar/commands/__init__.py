"""Sub-commands of the ``cifar`` CLI (one module each: ``add_arguments`` and ``run``)."""
