"""The points ledger: operation handlers over the store, idempotency, invariant checker."""
