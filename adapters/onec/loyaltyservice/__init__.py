"""The 1C «Сервер лояльности» HTTP contract (``/hs/loyaltyservice/…``).

1C:Розница 2/3, УНФ and 1С:РМК contain a client for an external loyalty server; serving its
contract exactly lets a retailer connect tills by entering our URL, login and password in 1C.
Every endpoint translates to a ``contracts`` operation on ``LoyaltyService`` and back
(``router.py``); ``config.py`` is the integrator's ``onec:`` mapping section.
"""
