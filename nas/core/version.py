"""The package version, in the lowest layer so that any module can read it without importing the root package
``nas`` (whose lazy re-exports reach every layer). ``setup.cfg`` reads it from here."""

__version__ = "0.1.0"
