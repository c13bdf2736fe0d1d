"""Sub-commands of the ``cifar`` CLI (one module each: ``add_arguments`` and ``run``).

The top of the layers: commands may use training, evaluation, exports and serving. Modules not
listed in ``cifar.cli.COMMANDS`` (``comparison``) hold the orchestration behind a command.
"""
