"""Pure loyalty logic: program configuration, pricing of a cart, allocation arithmetic.

Nothing here touches a database or the network; it depends only on ``contracts`` (and pydantic),
so every rule can be tested with plain values and reused by any protocol adapter.
"""
