"""Metrics: each turns an ``EvalContext`` into ``Record``s. Register new ones in ``harness.registry.metrics``."""
