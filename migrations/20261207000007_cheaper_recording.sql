-- The ingester's record statement back to its cost before the monthly
-- partitions (issue 23). The key table added a heap row and a join to
-- every delivery; these two changes take more than that off again. Both
-- are catalogue changes on a table of any size (no table is rewritten).
--
-- 1. The sender's key compared byte by byte. Every delivery descends
--    delivery_keys' primary key twice (ON CONFLICT's check, then the
--    insert), comparing text at each level; under the database's default
--    collation each comparison goes through strcoll (C.UTF-8 here, en_US
--    and others elsewhere are slower still). The ids are opaque tokens
--    (msg_..., evt_...): equality is all they need, and byte order serves
--    the index as well as any. The table is not rewritten; its primary
--    key is rebuilt, under this migration's lock, unless it was made with
--    "C" already (README, "Moving a running system onto partitions",
--    creates it so ahead: then the index is kept as it is).
alter table delivery_keys
    alter column provider type text collate "C",
    alter column delivery_id type text collate "C";

-- 2. The request headers stored as json, not jsonb. They are written once
--    and only ever read whole (the console shows them); jsonb parsed every
--    header into a tree on the hot path (about a tenth of the statement),
--    json only checks the text is JSON and keeps it as sent.
--    Changing the column's type would rewrite every partition, the legacy
--    one included (minutes under an exclusive lock on a large table), so
--    the jsonb column keeps the rows recorded until now under another name
--    and a new json column takes its place: new rows fill `headers`, rows
--    from before have theirs in `headers_jsonb`. Readers take whichever is
--    set; scrubbing empties both. Once retention has dropped every month
--    recorded before this migration (and the legacy partition), a later
--    migration drops `headers_jsonb`.
alter table webhook_deliveries rename column headers to headers_jsonb;
alter table webhook_deliveries alter column headers_jsonb drop not null;
-- every request header as [name, value] pairs, as the ingester wrote them;
-- [] once scrubbed; null only on rows recorded before this migration
alter table webhook_deliveries add column headers json;
