"""Devices and their descriptors (timing, memory, energy and carbon come with the efficiency suite)."""
