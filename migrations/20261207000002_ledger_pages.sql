-- A user's ledger read a page at a time, newest first, from a cursor (the
-- last entry id the client saw): GET /api/v1/user/credits/ledger. Entry ids
-- give a total order that timestamps from concurrent transactions do not.
-- It replaces the (user_id, created_at) index, which no query orders by:
-- every grant and spend writes one ledger row, and a second per-user index
-- would cost each of them an index insertion.
create index credit_ledger_user_entry_idx on credit_ledger (user_id, id);
drop index credit_ledger_user_idx;
