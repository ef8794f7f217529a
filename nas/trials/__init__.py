"""Trials: :class:`Trial`, :class:`Result`, :class:`Status`, objectives and constraints."""
