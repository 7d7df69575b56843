-- Idempotency-Keys are kept for 24 hours from their reservation, then
-- deleted with the answer they replay (it carries the order's client
-- secret). The API deletes a bounded batch of the oldest expired keys on
-- each reservation (api/src/order_keys.rs); this index makes that a short
-- range scan that stops at the first key still kept. reserved_at changes
-- only when a reservation is taken over; binding a key (crossmint_order_id,
-- response) changes no indexed column, so it stays a heap-only update. The
-- table is not on the payment path.
create index order_idempotency_keys_reserved_idx on order_idempotency_keys (reserved_at);
