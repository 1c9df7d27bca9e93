"""The request engine: per-request context, the operation registry and batch dispatch."""
