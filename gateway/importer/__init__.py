"""Migration of a retailer's base from an old system: cards with balances, streamed and batched."""
