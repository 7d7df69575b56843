-- Room on each page for every row's own update to stay heap-only (HOT): no
-- new index entries, no second copy in every index. Measured on the
-- benchmark (deploy/bench.sh drain): with the old settings only about one
-- update in five was heap-only, because a page filled to 80 or 85% has room
-- for the new versions of one or two of its rows, not all of them.
--
-- webhook_deliveries: about 850 bytes a row; at 50% a page holds four rows
-- and room for each one's processed_at update.
-- payment_orders: inserted at about 600 bytes (pending), updated once or
-- twice as its payment arrives (about 750 bytes, with the status history);
-- at 40% a page holds five rows and room for each one's new version.
--
-- Applies to pages written from now on; the tables take more pages in
-- exchange (webhook_deliveries, the largest, about 1.7 times as many).
alter table webhook_deliveries set (fillfactor = 50);
alter table payment_orders set (fillfactor = 40);
