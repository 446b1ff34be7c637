"""The world a run simulates: reference data, calendar, catalogs, prices, :class:`World`.

Builders take the settings section they read and a named random stream; the world
they build is fixed for the whole run.
"""
