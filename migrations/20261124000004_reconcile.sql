-- Reconcile asks Crossmint about orders whose payment never arrived: pending
-- (or expired by the payment timeout) past an age. A partial index keeps
-- that scan to the few such orders, however many completed ones there are.
create index payment_orders_awaiting_payment_idx
    on payment_orders (created_at) where status in ('pending', 'expired');
