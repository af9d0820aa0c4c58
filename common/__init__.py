"""Pieces every GridClock service shares: settings, errors, metrics, Redis, processes."""
