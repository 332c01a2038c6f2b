"""A SOAP service for tills, compatible with the Manzana-style ``ProcessRequest`` cheque API.

``wsdl.py`` is the published contract (document/literal, SOAP 1.1 and 1.2 bindings),
``envelope.py`` envelopes and faults of both versions,
``handlers.py`` the translation of each request to ``contracts`` operations, ``router.py`` the
HTTP endpoint.
"""
