-- 0014 refunds that move real money, claimed by the customer like a pull payment. The merchant issues
-- one on a payment (a variant says how much), the customer claims it with their own address, the
-- merchant approves, and it is sent from the wallet the payment went to: a PSBT the merchant signs
-- (Bitcoin), or a transaction the merchant signs or the shop's payout hot wallet sends (EVM). The
-- customer's address is watched, so the indexer sees the refund arrive, confirm, and any reorg.
CREATE TABLE refunds (
    id               uuid PRIMARY KEY,
    payment_id       uuid NOT NULL REFERENCES crypto_payments (id),
    order_id         uuid NOT NULL REFERENCES coffee_orders (id),
    shop_id          uuid NOT NULL REFERENCES coffee_shops (id),
    wallet_id        uuid REFERENCES wallets (id),  -- sent from the payment's wallet (NULL: the platform's)
    chain            varchar(32) NOT NULL,
    asset            varchar(16) NOT NULL,
    decimals         smallint NOT NULL,
    token_address    varchar(42),
    variant          varchar(16) NOT NULL
        CHECK (variant IN ('crypto_paid', 'fiat_today', 'fiat_fixed', 'overpaid', 'custom')),
    fiat_amount      numeric(12, 2) CHECK (fiat_amount > 0),
    fiat_currency    char(3),
    rate             numeric(38, 18) CHECK (rate > 0),
    fee_bps          integer NOT NULL DEFAULT 0 CHECK (fee_bps BETWEEN 0 AND 9999),
    amount           numeric(78, 0) CHECK (amount > 0),  -- base units to send; a fiat_fixed one is set at approval
    status           varchar(24) NOT NULL CHECK (status IN (
        'awaiting_claim', 'awaiting_approval', 'awaiting_signature', 'sending', 'in_flight', 'completed',
        'cancelled', 'failed')),
    method           varchar(16) CHECK (method IN ('psbt', 'hot_wallet', 'external')),
    destination      varchar(128),
    claim_expires_at timestamptz NOT NULL,
    psbt             text,          -- the unsigned PSBT (base64) the merchant signs
    txid             varchar(66),
    network_fee      numeric(78, 0),
    change_index     bigint,
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
    CHECK (amount IS NOT NULL OR variant = 'fiat_fixed'),
    CHECK (status IN ('awaiting_claim', 'cancelled') OR destination IS NOT NULL)
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id);
CREATE INDEX refunds_shop_idx ON refunds (shop_id, created_at, id);
CREATE INDEX refunds_destination_idx ON refunds (chain, destination) WHERE destination IS NOT NULL;
CREATE INDEX refunds_sending_idx ON refunds (chain) WHERE status = 'sending';

-- refund entries: approved (the shop's balance owes it to the customer), sent (it left the wallet), its
-- network fee (paid from the shop's wallet), cancelled (back to the shop). Each kind once per refund, ever.
ALTER TABLE ledger_entries ADD COLUMN refund_id uuid REFERENCES refunds (id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('payment', 'reversal', 'refund', 'refund_sent', 'refund_fee', 'refund_cancelled'));
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_refund_check CHECK ((refund_id IS NULL) = (kind IN ('payment', 'reversal')));
CREATE UNIQUE INDEX ledger_entries_refund_once_uq ON ledger_entries (refund_id, kind, account) WHERE refund_id IS NOT NULL;

-- a destination watched for a refund belongs to no order
ALTER TABLE watched_addresses ADD COLUMN purpose varchar(16) NOT NULL DEFAULT 'deposit'
    CHECK (purpose IN ('deposit', 'change', 'refund'));

-- the outputs a refund's PSBT spends, so two refunds never spend the same one
CREATE TABLE refund_inputs (
    refund_id    uuid NOT NULL REFERENCES refunds (id),
    chain        varchar(32) NOT NULL,
    txid         varchar(66) NOT NULL,
    output_index integer NOT NULL,
    PRIMARY KEY (refund_id, txid, output_index)
);
CREATE INDEX refund_inputs_output_idx ON refund_inputs (chain, txid, output_index);

-- a payout hot wallet's signed transaction is kept from before it is broadcast until it lands
ALTER TABLE refunds ADD COLUMN signed_tx text, ADD COLUMN sender varchar(42);
ALTER TABLE refunds ADD COLUMN sender_nonce bigint;
