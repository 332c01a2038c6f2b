"""Protocol adapters: each folder speaks one outside protocol and no adapter imports another."""
