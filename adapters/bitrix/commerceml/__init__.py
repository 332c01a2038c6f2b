"""The site side of the 1C exchange protocol (``/bitrix/admin/1c_exchange.php``, ``type=sale``):
sessions, chunked uploads, streamed import of 1C's documents, export of web orders."""
