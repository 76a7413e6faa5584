"""`hemisphere up`: every region of the global topology on this machine, and its control."""

from hemisphere.up.commands import register

__all__ = ["register"]
