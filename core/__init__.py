"""The Discord-free core of newsbot: archive reading, ingest, the store, delivery planning.

Nothing in this package imports discord; the Discord side (`bot/`, `cogs/`) depends on it.
"""
