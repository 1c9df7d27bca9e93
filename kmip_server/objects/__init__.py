"""The managed-object model: attribute rules, the lifecycle state machine, attribute storage."""
