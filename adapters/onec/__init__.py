"""1C: the «Сервер лояльности» HTTP contract, the SOAP service and WSDL, the 1C:ERP client."""
