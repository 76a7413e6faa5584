"""The local AWS endpoint (moto) as Hemisphere runs it."""
