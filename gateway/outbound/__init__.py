"""Outbound calls: the transactional outbox, its relay, and the deliverers (webhooks…)."""
