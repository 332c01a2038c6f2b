"""Signed events of the 1C-Bitrix site module: cart calculation, checkout hold, whole-order
snapshots on every order event, user registration. See ``docs/bitrix.md``."""
