"""The interfaces over the use cases: each a thin adapter (decode, call, encode)."""
