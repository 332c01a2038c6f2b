"""Mailings to an audience (issue 20): create with a template and optional promo codes or gift
points, preview the audience, consent and cost, plan and queue in short batches through the
outbox and the provider cascade, unsubscribe links, and a report of delivery and of purchases by
recipients against a holdout that got nothing.

Modules: ``config`` (the ``mailings:`` section), ``requests`` (what a caller sends and reads),
``texts`` (rendering, SMS parts, cost), ``store`` (create, find, preview), ``planner`` (batches
into the outbox), ``unsubscribe`` (signed links, the opt-out), ``report``, ``grants`` (one-off
points to an audience, walked in batches)."""
