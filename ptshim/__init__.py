"""ptshim's user-facing layer: scenarios, sessions, backends, export, dump and the CLI.

- :mod:`ptshim.scenario`: the scenario format, parsing and validation
- :mod:`ptshim.model`: the model of what should be mapped
- :mod:`ptshim.backends`: the :class:`~ptshim.backends.Backend` protocol and the backends
- :mod:`ptshim.session`: a booted kernel + process mm + backend + model, with ``verify()``
- :mod:`ptshim.export`: ``phys.bin`` + ``machine.json``
- :mod:`ptshim.dump`: ptdump-style listings
- :mod:`ptshim.cli`: the ``ptshim`` command
"""
