"""Background workers that run beside the API (inside ``gateway serve``) or alone."""
