"""Bitrix24: outbound webhooks (stored, acknowledged, processed through the outbox) and the REST
client used to fetch the entities they name (incoming webhook URL, leaky bucket, batch, paging)."""
