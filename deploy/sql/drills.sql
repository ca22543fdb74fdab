-- name: order_states
-- The drill's orders as the database has them: status and what their payment received (absent: not there).
SELECT o.id, o.order_status, p.status AS payment_status, p.amount_received
FROM coffee_orders o JOIN crypto_payments p ON p.order_id = o.id
WHERE o.id = ANY($1::uuid[]);

-- name: credits_per_payment
-- What the ledger credited each of these orders' payments: how many payment postings (a second one would be
-- a double credit) and their sum, less reversals.
SELECT p.order_id, count(*) FILTER (WHERE e.kind = 'payment') AS postings,
       coalesce(sum(e.amount), 0) AS credited
FROM crypto_payments p
JOIN ledger_entries e ON e.payment_id = p.id AND e.account LIKE 'deposits:%' AND e.kind IN ('payment', 'reversal')
WHERE p.order_id = ANY($1::uuid[])
GROUP BY p.order_id;

-- name: unbalanced_groups
-- Ledger postings whose entries do not sum to zero (double entry: there must be none).
SELECT entry_group, sum(amount) AS total FROM ledger_entries GROUP BY entry_group HAVING sum(amount) <> 0;

-- name: indexed_tip
-- The height the chain's follower has applied up to (its checkpoint).
SELECT tip_height FROM chain_cursors WHERE chain = $1;

-- name: now
-- The database's clock: a point-in-time target is a time as the server counts it.
SELECT clock_timestamp();

-- name: in_recovery
-- True until a restored cluster has replayed up to its target and been promoted.
SELECT pg_is_in_recovery();
