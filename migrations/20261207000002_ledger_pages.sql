-- A user's ledger read a page at a time, newest first, from a cursor (the
-- last entry id the client saw): GET /api/v1/user/credits/ledger. Entry ids
-- give a total order that timestamps from concurrent transactions do not.
create index credit_ledger_user_entry_idx on credit_ledger (user_id, id);
