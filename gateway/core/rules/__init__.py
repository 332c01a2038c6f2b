"""The loyalty program's rules, one module per concept: the ``catalogue`` (price types, kinds of
goods, zones), ``segments``, ``tiers``, the ``discounts`` tree, ``accrual`` rules, ``bonuses``
(birthday, referral), the ``conditions`` every rule shares, cross-section ``validation``, and
their evaluation for one purchase (``evaluate``, ``spending``). ``gateway/core/pricing.py`` puts
them together. Pure: no database, no clock."""
