"""One module per resource kind, found by scanning this package (see base.registry).

Modules starting with "_" are shared helpers (one per OpenStack service), not kinds.
"""
