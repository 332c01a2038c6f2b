"""The 1C-Bitrix adapter: events of the site module (``site/``), Bitrix24 outbound webhooks and
REST client (``b24/``), and the site side of the CommerceML order exchange with 1C
(``commerceml/``). The three parts share only the ``bitrix:`` configuration section."""
