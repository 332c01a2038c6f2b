"""1C:ERP (and 1C:УТ) as the source of customer orders: two transports behind one port
(``gateway.core.erp.ErpPort``) — the standard OData interface (``odata``) and a web service the
ERP publishes (``soap``, WSDL in ``wsdl/``) — and the mapping of ERP documents to ``contracts``
order snapshots. Notes for the 1C developer: ``README.md`` in this folder."""

from __future__ import annotations

from adapters.onec.erp.config import ErpConfig
from gateway.core.erp import CallGuard, ErpPort


def build_transport(config: ErpConfig, guard: CallGuard) -> ErpPort:
    """The configured transport; every call it makes goes through ``guard`` (the throttle)."""
    if config.transport == "soap":
        from adapters.onec.erp.soap import SoapTransport

        return SoapTransport(config, guard)
    from adapters.onec.erp.odata import ODataTransport

    return ODataTransport(config, guard)
