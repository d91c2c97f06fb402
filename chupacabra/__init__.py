"""chupacabra: a self-hosted backend for turn-based online games."""

__version__ = "0.1.0"
