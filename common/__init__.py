"""Pieces every GridClock service shares: settings, JSON errors, metrics, Redis lookup, processes."""
