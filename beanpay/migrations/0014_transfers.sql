-- 0014 money going out: refunds and payouts, one mechanism. A refund is issued on a payment (a variant
-- says how much) and claimed by the customer with their own address, like a pull payment; a payout
-- moves a custodial shop's balance to the merchant's own address once an operator approves it. Either
-- is sent from the wallet the money is in: a PSBT its owner signs (Bitcoin; payouts batched, several
-- outputs in one transaction), or a transaction the merchant signs or a payout hot wallet sends (EVM).
-- The destination is watched, so the indexer sees the money arrive, confirm, and any reorg.
CREATE TABLE transfers (
    id               uuid PRIMARY KEY,
    kind             varchar(8) NOT NULL CHECK (kind IN ('refund', 'payout')),
    payment_id       uuid REFERENCES crypto_payments (id),  -- a refund's payment
    order_id         uuid REFERENCES coffee_orders (id),
    shop_id          uuid NOT NULL REFERENCES coffee_shops (id),
    wallet_id        uuid REFERENCES wallets (id),  -- sent from this wallet (NULL: the platform's)
    chain            varchar(32) NOT NULL,
    asset            varchar(16) NOT NULL,
    decimals         smallint NOT NULL,
    token_address    varchar(42),
    variant          varchar(16)
        CHECK (variant IN ('crypto_paid', 'fiat_today', 'fiat_fixed', 'overpaid', 'custom')),
    fiat_amount      numeric(12, 2) CHECK (fiat_amount > 0),
    fiat_currency    char(3),
    rate             numeric(38, 18) CHECK (rate > 0),
    fee_bps          integer NOT NULL DEFAULT 0 CHECK (fee_bps BETWEEN 0 AND 9999),
    amount           numeric(78, 0) CHECK (amount > 0),  -- base units to send; a fiat_fixed refund's is set at approval
    status           varchar(24) NOT NULL CHECK (status IN (
        'awaiting_claim', 'awaiting_approval', 'awaiting_signature', 'sending', 'in_flight', 'completed',
        'cancelled', 'failed')),
    method           varchar(16) CHECK (method IN ('psbt', 'hot_wallet', 'external')),
    destination      varchar(128),
    claim_expires_at timestamptz,   -- a refund's claim link
    batch_id         uuid,          -- payouts sent in one transaction
    psbt             text,          -- the unsigned PSBT (base64) the wallet's owner signs
    txid             varchar(66),
    network_fee      numeric(78, 0),  -- this transfer's share of its transaction's fee, paid from the wallet
    change_index     bigint,
    signed_tx        text,          -- a hot wallet's transaction, kept from before it is broadcast
    sender           varchar(42),
    sender_nonce     bigint,
    reason           text,
    failure          text,
    created_by       uuid,
    approved_by      uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    approved_at      timestamptz,
    sent_at          timestamptz,
    completed_at     timestamptz,
    settled_at       timestamptz,   -- when the ledger first recorded the money leaving (once, ever)
    updated_at       timestamptz NOT NULL DEFAULT now(),
    version          integer NOT NULL DEFAULT 1,
    CHECK ((kind = 'refund') = (payment_id IS NOT NULL AND order_id IS NOT NULL AND variant IS NOT NULL
                                AND claim_expires_at IS NOT NULL)),
    CHECK (amount IS NOT NULL OR variant = 'fiat_fixed'),
    CHECK (status IN ('awaiting_claim', 'cancelled') OR destination IS NOT NULL)
);
CREATE INDEX transfers_payment_idx ON transfers (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX transfers_shop_idx ON transfers (shop_id, kind, created_at, id);
CREATE INDEX transfers_destination_idx ON transfers (chain, destination) WHERE destination IS NOT NULL;
CREATE INDEX transfers_sending_idx ON transfers (chain) WHERE status = 'sending';
CREATE INDEX transfers_batch_idx ON transfers (batch_id) WHERE batch_id IS NOT NULL;

-- the outputs a transfer's PSBT spends, so two transfers never spend the same one
CREATE TABLE transfer_inputs (
    transfer_id  uuid NOT NULL REFERENCES transfers (id),
    chain        varchar(32) NOT NULL,
    txid         varchar(66) NOT NULL,
    output_index integer NOT NULL,
    PRIMARY KEY (transfer_id, txid, output_index)
);
CREATE INDEX transfer_inputs_output_idx ON transfer_inputs (chain, txid, output_index);

-- a transfer's entries: approved (the shop's balance owes it), sent (it left the wallet), its network fee
-- (paid from the wallet), cancelled (back to the shop); kinds <refund|payout>[_sent|_fee|_cancelled],
-- each once per transfer, ever. A payout's entries belong to no payment.
ALTER TABLE ledger_entries ADD COLUMN transfer_id uuid REFERENCES transfers (id);
ALTER TABLE ledger_entries ALTER COLUMN payment_id DROP NOT NULL;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN (
    'payment', 'reversal', 'refund', 'refund_sent', 'refund_fee', 'refund_cancelled',
    'payout', 'payout_sent', 'payout_fee', 'payout_cancelled'));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_transfer_check
    CHECK ((transfer_id IS NULL) = (kind IN ('payment', 'reversal')));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_payment_check
    CHECK (payment_id IS NOT NULL OR kind LIKE 'payout%');
CREATE UNIQUE INDEX ledger_entries_transfer_once_uq ON ledger_entries (transfer_id, kind, account)
    WHERE transfer_id IS NOT NULL;

-- a destination watched for money going out belongs to no order
ALTER TABLE watched_addresses ADD COLUMN purpose varchar(16) NOT NULL DEFAULT 'deposit'
    CHECK (purpose IN ('deposit', 'change', 'destination'));
