"""About Xueliang (雪亮, "sharp eyes"): rural video surveillance events and coverage planning.

Shared core of the one ``xueliang`` namespace: configuration (:mod:`xueliang.config`),
bus message contracts (:mod:`xueliang.contracts`), the bus transports
(:mod:`xueliang.bus`) and the command line (:mod:`xueliang.cli`). The stages live in
the repository's top-level folders and are installed as ``xueliang.ingest``,
``xueliang.detector``, ``xueliang.dispatch``, ``xueliang.api``, ``xueliang.coverage``
and ``xueliang.scenes``. Data flows one way: ingest → detector → dispatch → api.
"""

__version__ = "0.1.0"
