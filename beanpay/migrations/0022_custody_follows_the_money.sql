-- 0022 custody follows the money: who holds the money behind each ledger entry and refund, Lightning
-- invoices bound to the node that issued them, and the database refusing an overdraft of what the
-- platform holds for a shop.

-- Whether the money an entry moves is held by the platform (its wallet or its Lightning node: custodial) or
-- by the shop (its own wallet or node). Entries written before 0022, and by a process of the previous
-- release during a rolling deploy, say nothing (NULL): theirs is their payment's wallet's, as before.
ALTER TABLE ledger_entries ADD COLUMN custodial boolean;

-- Every ledger entry with its custody: the one definition balances, payouts, reconciliation and the
-- overdraft check read (payouts' entries have no payment: payouts move custodial money only).
CREATE VIEW ledger_custody AS
SELECT l.id, l.entry_group, l.account, l.shop_id, l.chain, l.asset, l.amount, l.kind, l.payment_id, l.memo,
       l.created_at, l.transfer_id, coalesce(l.custodial, p.wallet_id IS NULL, true) AS custodial
FROM ledger_entries l LEFT JOIN crypto_payments p ON p.id = l.payment_id;

-- A refund goes back from the custody that received its payment: the platform's (its wallet, its node) or
-- the shop's (its own wallet, or its own node: `node_id`, with the identity it had, `node_pubkey`, paid
-- back over Lightning by that node only). NULL: made before 0022 (custodial when it has no wallet).
ALTER TABLE transfers ADD COLUMN custodial boolean;
ALTER TABLE transfers ADD COLUMN node_id uuid REFERENCES lightning_nodes (id);
ALTER TABLE transfers ADD COLUMN node_pubkey varchar(66);

-- The identity of the node an invoice was issued on (a shop may later connect another node under the same
-- row), and whether it was settled when it should no longer have been paid (cancelled or past its time):
-- such money is a late payment for the merchant to accept or refund, never the order's payment.
ALTER TABLE lightning_invoices ADD COLUMN node_pubkey varchar(66);
ALTER TABLE lightning_invoices ADD COLUMN late boolean NOT NULL DEFAULT false;

-- One Lightning invoice pays one refund: lnd pays a payment hash once, and answers a second attempt "already
-- paid", which must not complete a second refund with nothing sent.
CREATE UNIQUE INDEX transfers_lightning_invoice_once ON transfers (destination)
    WHERE destination LIKE 'lightning:%' AND status <> 'cancelled';

-- Debts come only from entries the chain imposes (a reorg's reversal, a transaction's network fee): the
-- engine looks for shops in debt among those that have such entries.
CREATE INDEX ledger_entries_imposed_idx ON ledger_entries (shop_id)
    WHERE kind IN ('reversal', 'refund_fee', 'payout_fee');

-- No refund or payout takes a shop's custodial balance below zero. Checked per shop, chain and asset that a
-- statement debits for a refund or payout, under the same per-shop lock the approvals take (so two
-- approvals at once are decided one after the other), after the lock is held (a fresh snapshot then
-- sees what the other committed). Credits and what the chain imposes (reversals, fees) are never
-- refused: the money did move; a balance they take below zero is a debt (alerted, shown in the console).
CREATE FUNCTION ledger_no_overdraft() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    debited record;
    balance numeric;
BEGIN
    FOR debited IN
        SELECT DISTINCT n.shop_id, n.account, n.chain, n.asset
        FROM new_entries n LEFT JOIN crypto_payments p ON p.id = n.payment_id
        WHERE n.kind IN ('refund', 'payout') AND n.account LIKE 'merchant:%' AND n.amount > 0
          AND coalesce(n.custodial, p.wallet_id IS NULL, true)
        ORDER BY n.shop_id, n.chain, n.asset
    LOOP
        PERFORM pg_advisory_xact_lock(hashtext('beanpay.custody'), hashtext(debited.shop_id::text));
        SELECT -coalesce(sum(amount), 0) INTO balance FROM ledger_custody
        WHERE account = debited.account AND chain = debited.chain AND asset = debited.asset AND custodial;
        IF balance < 0 THEN
            RAISE EXCEPTION 'the shop''s custodial balance of % % would fall below zero (% base units)',
                debited.chain, debited.asset, balance USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_no_overdraft AFTER INSERT ON ledger_entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_no_overdraft();

-- Invoices issued before 0022 take the identity their node row has (a node is replaced only once none of
-- its invoices is open).
UPDATE lightning_invoices l SET node_pubkey = n.pubkey FROM lightning_nodes n
WHERE n.id = l.node_id AND l.node_pubkey IS NULL;

-- Before 0022 a Lightning payment's custody was read from its payment's wallet: money in a shop's own node
-- counted as the platform's (payable out), money in the platform's node as the shop's. This repair posts,
-- per payment with settled invoices, the balanced pair that moves its credit to the custody that holds it
-- (from what the ledger says now, so running it again changes nothing), and binds refunds still open to
-- the custody that received their payment. It runs below, and once more after a rolling deploy whose old
-- processes wrote entries without custody (`SELECT ledger_custody_repair();`). Returns the payments moved.
CREATE FUNCTION ledger_custody_repair() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    moved integer;
BEGIN
    WITH lightning AS (
        SELECT l.payment_id, sum(div(l.amt_paid_msat, 1000)) FILTER (WHERE n.shop_id IS NULL) AS platform,
               sum(div(l.amt_paid_msat, 1000)) FILTER (WHERE n.shop_id IS NOT NULL) AS own
        FROM lightning_invoices l JOIN lightning_nodes n ON n.id = l.node_id
        WHERE l.state = 'settled' GROUP BY l.payment_id
    ), credited AS (
        SELECT p.id AS payment_id, o.shop_id, p.chain, p.crypto_currency AS asset, p.wallet_id,
               -sum(c.amount) AS total, -coalesce(sum(c.amount) FILTER (WHERE c.custodial), 0) AS custodial,
               coalesce(ln.platform, 0) AS platform, coalesce(ln.own, 0) AS own
        FROM lightning ln JOIN crypto_payments p ON p.id = ln.payment_id JOIN coffee_orders o ON o.id = p.order_id
        JOIN ledger_custody c ON c.payment_id = p.id AND c.account = 'merchant:' || o.shop_id
                             AND c.kind IN ('payment', 'reversal')
        GROUP BY p.id, o.shop_id, p.chain, p.crypto_currency, p.wallet_id, ln.platform, ln.own
    ), moves AS (
        SELECT payment_id, shop_id, chain, asset, gen_random_uuid() AS entry_group,
               least(total, platform + CASE WHEN wallet_id IS NULL THEN greatest(total - platform - own, 0)
                                            ELSE 0 END) - custodial AS amount
        FROM credited
    ), posted AS (
        INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo,
                                    custodial)
        SELECT m.entry_group, 'merchant:' || m.shop_id, m.shop_id, m.chain, m.asset, e.amount, e.kind,
               m.payment_id, 'custody follows the money: moved to who holds it (0022)', e.custodial
        FROM moves m CROSS JOIN LATERAL (VALUES (-m.amount, 'payment', true),
                                                (m.amount, 'reversal', false)) AS e(amount, kind, custodial)
        WHERE m.amount > 0
        UNION ALL
        SELECT m.entry_group, 'merchant:' || m.shop_id, m.shop_id, m.chain, m.asset, e.amount, e.kind,
               m.payment_id, 'custody follows the money: moved to who holds it (0022)', e.custodial
        FROM moves m CROSS JOIN LATERAL (VALUES (-m.amount, 'reversal', true),
                                                (m.amount, 'payment', false)) AS e(amount, kind, custodial)
        WHERE m.amount < 0
        RETURNING payment_id
    )
    SELECT count(DISTINCT payment_id) INTO moved FROM posted;
    -- refunds not yet approved go back from the custody that received their payment (the shop's own node)
    UPDATE transfers t SET custodial = false, node_id = own.node_id, node_pubkey = own.node_pubkey
    FROM (SELECT DISTINCT ON (l.payment_id) l.payment_id, l.node_id, coalesce(l.node_pubkey, n.pubkey) AS node_pubkey
          FROM lightning_invoices l JOIN lightning_nodes n ON n.id = l.node_id
          WHERE l.state = 'settled' AND n.shop_id IS NOT NULL ORDER BY l.payment_id, l.settled_at) own
    WHERE t.payment_id = own.payment_id AND t.kind = 'refund' AND t.custodial IS NULL AND t.wallet_id IS NULL
      AND t.status IN ('awaiting_claim', 'awaiting_approval');
    RETURN moved;
END $$;

SELECT ledger_custody_repair();
