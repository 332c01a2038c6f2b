"""Customer messages: phone verification codes, ledger notifications, the provider cascade."""
