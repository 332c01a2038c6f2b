"""1C-Bitrix and Bitrix24: site events, outbound webhooks, REST client, CommerceML exchange."""
