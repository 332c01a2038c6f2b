"""Tables of orders (web shop and ERP orders): the last snapshot applied and what was posted."""
