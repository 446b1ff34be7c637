"""Settings: the frozen models of a run (models, fraud) and how they are loaded (loading).

The lowest layer above the core: it imports nothing from the world, the model, the
fraud plugins or the edges.
"""
