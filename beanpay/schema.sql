-- The schema a fresh `beanpay migrate` produces: written by `just schema`,
-- checked by tests/integration/test_schema.py. Change the schema with a migration, never here.
CREATE FUNCTION public.deposits_enqueue_inserted() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO payment_queue (chain, address) SELECT chain, address FROM new_deposits ORDER BY chain, address;
    IF FOUND THEN
        PERFORM pg_notify('beanpay_payments', '');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION public.deposits_enqueue_moved() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO payment_queue (chain, address)
    SELECT n.chain, n.address FROM new_deposits n JOIN old_deposits o ON o.id = n.id
    WHERE o.status IS DISTINCT FROM n.status ORDER BY n.chain, n.address;
    IF FOUND THEN
        PERFORM pg_notify('beanpay_payments', '');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION public.ledger_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only' USING ERRCODE = 'check_violation';
END $$;

CREATE FUNCTION public.ledger_balanced() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_entries GROUP BY entry_group, chain, asset HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'a ledger entry group does not balance' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION public.ledger_custody_repair() RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.ledger_no_overdraft() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.needs_transaction(reason text) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'needs a transaction: %', reason USING ERRCODE = 'BPT01';
END
$$;

CREATE TABLE public.address_counters (
    chain character varying(32) NOT NULL,
    next_index bigint DEFAULT 0 NOT NULL,
    CONSTRAINT address_counters_next_index_check CHECK ((next_index >= 0))
);

CREATE TABLE public.api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    key_digest bytea NOT NULL,
    prefix character varying(16) NOT NULL,
    name character varying(100) NOT NULL,
    permissions text[] NOT NULL,
    shop_ids uuid[] NOT NULL,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_keys_name_check CHECK ((length(btrim((name)::text)) > 0)),
    CONSTRAINT api_keys_permissions_check CHECK ((cardinality(permissions) > 0)),
    CONSTRAINT api_keys_shop_ids_check CHECK ((cardinality(shop_ids) > 0))
);

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    actor_id uuid,
    actor_role character varying(20),
    action character varying(64) NOT NULL,
    entity_type character varying(64) NOT NULL,
    entity_id text NOT NULL,
    before jsonb,
    after jsonb,
    request_id text,
    client_request_id text
);

ALTER TABLE public.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.cart_items (
    id uuid NOT NULL,
    cart_id uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity integer NOT NULL,
    customizations jsonb DEFAULT '{}'::jsonb NOT NULL,
    added_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT cart_items_quantity_check CHECK (((quantity >= 1) AND (quantity <= 100)))
);

CREATE TABLE public.carts (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    shop_id uuid NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.chain_blocks (
    chain character varying(32) NOT NULL,
    height bigint NOT NULL,
    hash character varying(66) NOT NULL,
    parent_hash character varying(66) NOT NULL,
    indexed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT chain_blocks_height_check CHECK ((height >= 0))
);

CREATE TABLE public.chain_cursors (
    chain character varying(32) NOT NULL,
    tip_height bigint NOT NULL,
    tip_hash character varying(66) NOT NULL,
    node_tip_height bigint,
    last_reorg_at timestamp with time zone,
    last_reorg_depth integer,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    halted_at timestamp with time zone,
    halt_reason text
);

CREATE TABLE public.coffee_orders (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    shop_id uuid NOT NULL,
    total_amount numeric(12,2) NOT NULL,
    currency character(3) NOT NULL,
    crypto_amount numeric(78,0),
    crypto_currency character varying(16),
    chain character varying(32),
    payment_status character varying(20) DEFAULT 'pending'::character varying NOT NULL,
    order_status character varying(20) DEFAULT 'pending'::character varying NOT NULL,
    order_type character varying(20) NOT NULL,
    pickup_time timestamp with time zone,
    delivery_address text,
    special_instructions text,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    trace_parent character varying(55),
    CONSTRAINT coffee_orders_check CHECK ((((order_type)::text <> 'delivery'::text) OR (delivery_address IS NOT NULL))),
    CONSTRAINT coffee_orders_crypto_amount_check CHECK ((crypto_amount > (0)::numeric)),
    CONSTRAINT coffee_orders_order_status_check CHECK (((order_status)::text = ANY ((ARRAY['pending'::character varying, 'confirmed'::character varying, 'preparing'::character varying, 'ready'::character varying, 'completed'::character varying, 'cancelled'::character varying, 'expired'::character varying])::text[]))),
    CONSTRAINT coffee_orders_order_type_check CHECK (((order_type)::text = ANY ((ARRAY['pickup'::character varying, 'delivery'::character varying, 'invoice'::character varying])::text[]))),
    CONSTRAINT coffee_orders_payment_status_check CHECK (((payment_status)::text = ANY ((ARRAY['pending'::character varying, 'processing'::character varying, 'confirmed'::character varying, 'underpaid'::character varying, 'overpaid'::character varying, 'late'::character varying, 'expired'::character varying, 'failed'::character varying, 'refunded'::character varying])::text[]))),
    CONSTRAINT coffee_orders_total_amount_check CHECK ((total_amount >= (0)::numeric))
);

CREATE TABLE public.coffee_shops (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(255) NOT NULL,
    address text NOT NULL,
    latitude numeric(10,8),
    longitude numeric(11,8),
    phone character varying(20),
    email character varying(255),
    currency character(3) DEFAULT 'USD'::bpchar NOT NULL,
    opening_hours jsonb,
    status character varying(20) DEFAULT 'active'::character varying NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT coffee_shops_check CHECK (((latitude IS NULL) = (longitude IS NULL))),
    CONSTRAINT coffee_shops_latitude_check CHECK (((latitude >= ('-90'::integer)::numeric) AND (latitude <= (90)::numeric))),
    CONSTRAINT coffee_shops_longitude_check CHECK (((longitude >= ('-180'::integer)::numeric) AND (longitude <= (180)::numeric))),
    CONSTRAINT coffee_shops_name_check CHECK ((length(btrim((name)::text)) > 0)),
    CONSTRAINT coffee_shops_status_check CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'closed'::character varying, 'inactive'::character varying, 'deleted'::character varying])::text[])))
);

CREATE TABLE public.coffee_supplies (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity integer NOT NULL,
    unit character varying(20) NOT NULL,
    reorder_level integer DEFAULT 10 NOT NULL,
    last_restocked timestamp with time zone,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    reserved integer DEFAULT 0 NOT NULL,
    discontinued boolean DEFAULT false NOT NULL,
    status character varying(20) GENERATED ALWAYS AS (
CASE
    WHEN discontinued THEN 'discontinued'::text
    WHEN ((quantity - reserved) <= 0) THEN 'out_of_stock'::text
    WHEN ((quantity - reserved) <= reorder_level) THEN 'low_stock'::text
    ELSE 'in_stock'::text
END) STORED NOT NULL,
    CONSTRAINT coffee_supplies_quantity_check CHECK ((quantity >= 0)),
    CONSTRAINT coffee_supplies_reorder_level_check CHECK ((reorder_level >= 0)),
    CONSTRAINT coffee_supplies_reserved_check CHECK ((reserved >= 0)),
    CONSTRAINT coffee_supplies_reserved_on_hand CHECK ((reserved <= quantity))
);

CREATE TABLE public.crypto_payments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    order_id uuid NOT NULL,
    user_id uuid NOT NULL,
    chain character varying(32) NOT NULL,
    crypto_currency character varying(16) NOT NULL,
    crypto_amount numeric(78,0) NOT NULL,
    amount_received numeric(78,0) DEFAULT 0 NOT NULL,
    decimals smallint NOT NULL,
    fiat_amount numeric(12,2) NOT NULL,
    fiat_currency character(3) NOT NULL,
    exchange_rate numeric(38,18) NOT NULL,
    wallet_address character varying(255) NOT NULL,
    transaction_hash character varying(255),
    block_number bigint,
    confirmations integer DEFAULT 0 NOT NULL,
    status character varying(20) DEFAULT 'pending'::character varying NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    confirmed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    token_address character varying(42),
    chain_id bigint,
    payment_uri text DEFAULT ''::text NOT NULL,
    rate_source character varying(32) DEFAULT 'static'::character varying NOT NULL,
    rate_as_of timestamp with time zone,
    resolution character varying(16),
    resolved_at timestamp with time zone,
    credited numeric(78,0) DEFAULT 0 NOT NULL,
    sweep_id uuid,
    wallet_id uuid,
    address_released_at timestamp with time zone,
    tolerance_bps integer,
    speed character varying(8),
    CONSTRAINT crypto_payments_amount_received_check CHECK ((amount_received >= (0)::numeric)),
    CONSTRAINT crypto_payments_confirmations_check CHECK ((confirmations >= 0)),
    CONSTRAINT crypto_payments_credited_check CHECK ((credited >= (0)::numeric)),
    CONSTRAINT crypto_payments_crypto_amount_check CHECK ((crypto_amount > (0)::numeric)),
    CONSTRAINT crypto_payments_decimals_check CHECK (((decimals >= 0) AND (decimals <= 36))),
    CONSTRAINT crypto_payments_exchange_rate_check CHECK ((exchange_rate > (0)::numeric)),
    CONSTRAINT crypto_payments_fiat_amount_check CHECK ((fiat_amount >= (0)::numeric)),
    CONSTRAINT crypto_payments_resolution_check CHECK (((resolution)::text = ANY ((ARRAY['accepted'::character varying, 'refunded'::character varying, 'settled'::character varying])::text[]))),
    CONSTRAINT crypto_payments_speed_check CHECK (((speed)::text = ANY ((ARRAY['medium'::character varying, 'low'::character varying])::text[]))),
    CONSTRAINT crypto_payments_status_check CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'processing'::character varying, 'confirmed'::character varying, 'underpaid'::character varying, 'overpaid'::character varying, 'late'::character varying, 'expired'::character varying, 'failed'::character varying, 'refunded'::character varying, 'resolved'::character varying])::text[]))),
    CONSTRAINT crypto_payments_tolerance_bps_check CHECK (((tolerance_bps >= 0) AND (tolerance_bps <= 1000)))
);

CREATE TABLE public.deposits (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    chain character varying(32) NOT NULL,
    asset character varying(16) NOT NULL,
    txid character varying(66) NOT NULL,
    output_index integer NOT NULL,
    address character varying(128) NOT NULL,
    amount numeric(78,0) NOT NULL,
    block_hash character varying(66),
    block_height bigint,
    status character varying(16) NOT NULL,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    confirmed_at timestamp with time zone,
    orphaned_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    replaced_by character varying(66),
    CONSTRAINT deposits_amount_check CHECK ((amount > (0)::numeric)),
    CONSTRAINT deposits_check CHECK ((((status)::text = ANY ((ARRAY['confirming'::character varying, 'confirmed'::character varying])::text[])) = (block_hash IS NOT NULL))),
    CONSTRAINT deposits_output_index_check CHECK ((output_index >= 0)),
    CONSTRAINT deposits_status_check CHECK (((status)::text = ANY ((ARRAY['seen'::character varying, 'confirming'::character varying, 'confirmed'::character varying, 'orphaned'::character varying, 'replaced'::character varying, 'dropped'::character varying])::text[])))
);

CREATE TABLE public.event_journal (
    outbox_id bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type character varying(64) NOT NULL,
    topic character varying(64) NOT NULL,
    aggregate_type character varying(64) NOT NULL,
    aggregate_id text NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    trace_parent character varying(55),
    published_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.event_outbox (
    id bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type character varying(64) NOT NULL,
    topic character varying(64) NOT NULL,
    aggregate_type character varying(64) NOT NULL,
    aggregate_id text NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    trace_parent character varying(55)
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='1000', autovacuum_vacuum_cost_delay='0', autovacuum_analyze_scale_factor='0', autovacuum_analyze_threshold='2000');

ALTER TABLE public.event_outbox ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.event_outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.evm_sweeps (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    chain character varying(32) NOT NULL,
    tx_hash character varying(66),
    status character varying(16) NOT NULL,
    order_ids uuid[] NOT NULL,
    error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT evm_sweeps_status_check CHECK (((status)::text = ANY ((ARRAY['submitted'::character varying, 'confirmed'::character varying, 'failed'::character varying])::text[])))
);

CREATE TABLE public.idempotency_keys (
    principal text NOT NULL,
    key character varying(255) NOT NULL,
    method character varying(10) NOT NULL,
    path text NOT NULL,
    request_hash bytea NOT NULL,
    status_code integer NOT NULL,
    response_body bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE public.invitations (
    token_digest bytea NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id uuid NOT NULL,
    email character varying(320) NOT NULL,
    role character varying(16) NOT NULL,
    invited_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    accepted_at timestamp with time zone,
    accepted_by uuid,
    revoked_at timestamp with time zone,
    CONSTRAINT invitations_email_check CHECK (((email)::text = lower(btrim((email)::text)))),
    CONSTRAINT invitations_role_check CHECK (((role)::text = ANY ((ARRAY['owner'::character varying, 'manager'::character varying, 'staff'::character varying])::text[])))
);

CREATE TABLE public.invoices (
    id uuid NOT NULL,
    shop_id uuid NOT NULL,
    order_id uuid,
    amount numeric(12,2) NOT NULL,
    currency character(3) NOT NULL,
    assets text[] NOT NULL,
    order_ref character varying(200),
    buyer_email character varying(320),
    redirect_url character varying(2000),
    tolerance_bps integer NOT NULL,
    speed character varying(8) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    cancelled_at timestamp with time zone,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    CONSTRAINT invoices_amount_check CHECK ((amount > (0)::numeric)),
    CONSTRAINT invoices_assets_check CHECK ((cardinality(assets) > 0)),
    CONSTRAINT invoices_speed_check CHECK (((speed)::text = ANY ((ARRAY['medium'::character varying, 'low'::character varying])::text[]))),
    CONSTRAINT invoices_tolerance_bps_check CHECK (((tolerance_bps >= 0) AND (tolerance_bps <= 1000)))
);

CREATE VIEW public.invoice_states AS
 SELECT i.id,
    i.shop_id,
    i.order_id,
    i.amount,
    i.currency,
    i.assets,
    i.order_ref,
    i.buyer_email,
    i.redirect_url,
    i.tolerance_bps,
    i.speed,
    i.expires_at,
    i.cancelled_at,
    i.created_at,
    i.updated_at,
    i.version,
        CASE
            WHEN (i.cancelled_at IS NOT NULL) THEN 'cancelled'::character varying
            WHEN (p.id IS NULL) THEN (
            CASE
                WHEN (i.expires_at <= now()) THEN 'expired'::text
                ELSE 'new'::text
            END)::character varying
            ELSE p.status
        END AS status,
        CASE
            WHEN ((p.status)::text = ANY ((ARRAY['underpaid'::character varying, 'overpaid'::character varying, 'late'::character varying])::text[])) THEN p.status
            ELSE NULL::character varying
        END AS exception
   FROM (public.invoices i
     LEFT JOIN public.crypto_payments p ON ((p.order_id = i.order_id)));

CREATE TABLE public.ledger_entries (
    id bigint NOT NULL,
    entry_group uuid NOT NULL,
    account character varying(96) NOT NULL,
    shop_id uuid NOT NULL,
    chain character varying(32) NOT NULL,
    asset character varying(16) NOT NULL,
    amount numeric(78,0) NOT NULL,
    kind character varying(16) NOT NULL,
    payment_id uuid,
    memo text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    transfer_id uuid,
    custodial boolean,
    CONSTRAINT ledger_entries_amount_check CHECK ((amount <> (0)::numeric)),
    CONSTRAINT ledger_entries_kind_check CHECK (((kind)::text = ANY ((ARRAY['payment'::character varying, 'reversal'::character varying, 'refund'::character varying, 'refund_sent'::character varying, 'refund_fee'::character varying, 'refund_cancelled'::character varying, 'payout'::character varying, 'payout_sent'::character varying, 'payout_fee'::character varying, 'payout_cancelled'::character varying])::text[]))),
    CONSTRAINT ledger_entries_payment_check CHECK (((payment_id IS NOT NULL) OR ((kind)::text ~~ 'payout%'::text))),
    CONSTRAINT ledger_entries_transfer_check CHECK (((transfer_id IS NULL) = ((kind)::text = ANY ((ARRAY['payment'::character varying, 'reversal'::character varying])::text[]))))
);

CREATE VIEW public.ledger_custody AS
 SELECT l.id,
    l.entry_group,
    l.account,
    l.shop_id,
    l.chain,
    l.asset,
    l.amount,
    l.kind,
    l.payment_id,
    l.memo,
    l.created_at,
    l.transfer_id,
    COALESCE(l.custodial, (p.wallet_id IS NULL), true) AS custodial
   FROM (public.ledger_entries l
     LEFT JOIN public.crypto_payments p ON ((p.id = l.payment_id)));

ALTER TABLE public.ledger_entries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.ledger_entries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.lightning_invoices (
    payment_hash character varying(64) NOT NULL,
    node_id uuid NOT NULL,
    payment_id uuid NOT NULL,
    order_id uuid NOT NULL,
    bolt11 text NOT NULL,
    description text NOT NULL,
    amount_msat numeric(78,0) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    state character varying(12) DEFAULT 'open'::character varying NOT NULL,
    amt_paid_msat numeric(78,0),
    settle_index bigint,
    settled_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    node_pubkey character varying(66),
    late boolean DEFAULT false NOT NULL,
    CONSTRAINT lightning_invoices_amount_msat_check CHECK ((amount_msat > (0)::numeric)),
    CONSTRAINT lightning_invoices_amt_paid_msat_check CHECK ((amt_paid_msat > (0)::numeric)),
    CONSTRAINT lightning_invoices_check CHECK ((((state)::text = 'settled'::text) = ((amt_paid_msat IS NOT NULL) AND (settled_at IS NOT NULL)))),
    CONSTRAINT lightning_invoices_state_check CHECK (((state)::text = ANY ((ARRAY['open'::character varying, 'settled'::character varying, 'cancelled'::character varying])::text[])))
);

CREATE TABLE public.lightning_nodes (
    id uuid NOT NULL,
    shop_id uuid,
    rest_url character varying(2000) NOT NULL,
    tls_cert text NOT NULL,
    macaroon_sealed bytea,
    pay_macaroon_sealed bytea,
    pay_daily_limit_msat numeric(78,0),
    pubkey character varying(66) NOT NULL,
    alias character varying(64) DEFAULT ''::character varying NOT NULL,
    settle_index bigint DEFAULT 0 NOT NULL,
    health character varying(16) DEFAULT 'unknown'::character varying NOT NULL,
    health_reason text,
    inbound_msat numeric(78,0),
    checked_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT lightning_nodes_check CHECK (((shop_id IS NULL) = (macaroon_sealed IS NULL))),
    CONSTRAINT lightning_nodes_health_check CHECK (((health)::text = ANY ((ARRAY['unknown'::character varying, 'ready'::character varying, 'down'::character varying, 'not_synced'::character varying, 'no_liquidity'::character varying])::text[]))),
    CONSTRAINT lightning_nodes_pay_daily_limit_msat_check CHECK ((pay_daily_limit_msat >= (0)::numeric)),
    CONSTRAINT lightning_nodes_settle_index_check CHECK ((settle_index >= 0))
);

CREATE TABLE public.notification_preferences (
    user_id uuid NOT NULL,
    email character varying(320),
    language character varying(8) DEFAULT 'en'::character varying NOT NULL,
    email_enabled boolean DEFAULT true NOT NULL,
    push_enabled boolean DEFAULT true NOT NULL,
    in_app_enabled boolean DEFAULT true NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.notifications (
    id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type character varying(64) NOT NULL,
    channel character varying(8) NOT NULL,
    user_id uuid,
    recipient character varying(2000) NOT NULL,
    order_id uuid,
    title character varying(200) NOT NULL,
    body text NOT NULL,
    link character varying(2000),
    status character varying(12) NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    delivered_at timestamp with time zone,
    read_at timestamp with time zone,
    CONSTRAINT notifications_channel_check CHECK (((channel)::text = ANY ((ARRAY['email'::character varying, 'push'::character varying, 'in_app'::character varying])::text[]))),
    CONSTRAINT notifications_status_check CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'sent'::character varying, 'delivered'::character varying, 'failed'::character varying, 'read'::character varying])::text[])))
);

CREATE TABLE public.order_claims (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    order_id uuid NOT NULL,
    user_id uuid NOT NULL,
    shop_id uuid NOT NULL,
    claim_code character varying(16) NOT NULL,
    status character varying(20) NOT NULL,
    claimed_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    processed_at timestamp with time zone,
    pickup_time timestamp with time zone,
    CONSTRAINT order_claims_status_check CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'processed'::character varying, 'expired'::character varying])::text[])))
);

CREATE TABLE public.order_items (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    order_id uuid NOT NULL,
    product_id uuid NOT NULL,
    product_name character varying(255) NOT NULL,
    base_price numeric(12,2) NOT NULL,
    final_price numeric(12,2) NOT NULL,
    quantity integer NOT NULL,
    customizations jsonb DEFAULT '[]'::jsonb NOT NULL,
    CONSTRAINT order_items_base_price_check CHECK ((base_price >= (0)::numeric)),
    CONSTRAINT order_items_final_price_check CHECK ((final_price >= (0)::numeric)),
    CONSTRAINT order_items_quantity_check CHECK ((quantity > 0))
);

CREATE TABLE public.order_push_subscriptions (
    id uuid NOT NULL,
    order_id uuid NOT NULL,
    endpoint character varying(2000) NOT NULL,
    p256dh character varying(200) NOT NULL,
    auth character varying(100) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    gone_at timestamp with time zone
);

CREATE TABLE public.order_reservations (
    order_id uuid NOT NULL,
    supply_id uuid NOT NULL,
    quantity integer NOT NULL,
    status character varying(16) NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_reservations_quantity_check CHECK ((quantity > 0)),
    CONSTRAINT order_reservations_status_check CHECK (((status)::text = ANY ((ARRAY['reserved'::character varying, 'committed'::character varying, 'released'::character varying])::text[])))
);

CREATE TABLE public.output_spends (
    chain character varying(32) NOT NULL,
    txid character varying(66) NOT NULL,
    output_index integer NOT NULL,
    spending_txid character varying(66) NOT NULL,
    block_hash character varying(66),
    block_height bigint,
    status character varying(16) NOT NULL,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT output_spends_check CHECK ((((status)::text = 'orphaned'::text) = (block_hash IS NULL))),
    CONSTRAINT output_spends_status_check CHECK (((status)::text = ANY ((ARRAY['confirming'::character varying, 'confirmed'::character varying, 'orphaned'::character varying])::text[])))
);

CREATE TABLE public.payment_queue (
    chain character varying(32) NOT NULL,
    address character varying(128) NOT NULL,
    queued_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    id bigint NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='500', autovacuum_vacuum_cost_delay='0', autovacuum_analyze_scale_factor='0', autovacuum_analyze_threshold='1000');

ALTER TABLE public.payment_queue ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.payment_queue_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.products (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(255) NOT NULL,
    description text,
    category character varying(100) NOT NULL,
    base_price numeric(12,2) NOT NULL,
    currency character(3) DEFAULT 'USD'::bpchar NOT NULL,
    image_url character varying(500),
    ingredients jsonb DEFAULT '[]'::jsonb NOT NULL,
    nutritional_info jsonb,
    customizations jsonb DEFAULT '[]'::jsonb NOT NULL,
    status character varying(20) DEFAULT 'active'::character varying NOT NULL,
    created_by uuid,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    shop_id uuid,
    CONSTRAINT products_base_price_check CHECK ((base_price >= (0)::numeric)),
    CONSTRAINT products_name_check CHECK ((length(btrim((name)::text)) > 0)),
    CONSTRAINT products_status_check CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'inactive'::character varying, 'deleted'::character varying])::text[])))
);

CREATE TABLE public.push_subscriptions (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    endpoint character varying(2000) NOT NULL,
    p256dh character varying(200) NOT NULL,
    auth character varying(100) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    gone_at timestamp with time zone
);

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.seen_inputs (
    chain character varying(32) NOT NULL,
    txid character varying(66) NOT NULL,
    prev_txid character varying(66) NOT NULL,
    prev_vout integer NOT NULL,
    seen_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT seen_inputs_prev_vout_check CHECK ((prev_vout >= 0))
);

CREATE TABLE public.shop_grants (
    user_id uuid NOT NULL,
    shop_id uuid NOT NULL,
    role character varying(16) NOT NULL,
    granted_by uuid,
    granted_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT shop_grants_role_check CHECK (((role)::text = ANY ((ARRAY['owner'::character varying, 'manager'::character varying, 'staff'::character varying])::text[])))
);

CREATE TABLE public.shop_products (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id uuid NOT NULL,
    product_id uuid NOT NULL,
    price numeric(12,2) NOT NULL,
    available boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    customizations jsonb NOT NULL,
    CONSTRAINT shop_products_price_check CHECK ((price >= (0)::numeric))
);

CREATE TABLE public.transfer_attempts (
    transfer_id uuid NOT NULL,
    chain character varying(32) NOT NULL,
    txid character varying(66) NOT NULL,
    batch_id uuid,
    psbt text,
    signed_tx text,
    sender character varying(42),
    sender_nonce bigint,
    network_fee numeric(78,0),
    replaced_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.transfer_inputs (
    transfer_id uuid NOT NULL,
    chain character varying(32) NOT NULL,
    txid character varying(66) NOT NULL,
    output_index integer NOT NULL
);

CREATE TABLE public.transfers (
    id uuid NOT NULL,
    kind character varying(8) NOT NULL,
    payment_id uuid,
    order_id uuid,
    shop_id uuid NOT NULL,
    wallet_id uuid,
    chain character varying(32) NOT NULL,
    asset character varying(16) NOT NULL,
    decimals smallint NOT NULL,
    token_address character varying(42),
    variant character varying(16),
    fiat_amount numeric(12,2),
    fiat_currency character(3),
    rate numeric(38,18),
    fee_bps integer DEFAULT 0 NOT NULL,
    amount numeric(78,0),
    status character varying(24) NOT NULL,
    method character varying(16),
    destination character varying(128),
    claim_expires_at timestamp with time zone,
    batch_id uuid,
    psbt text,
    txid character varying(66),
    network_fee numeric(78,0),
    change_index bigint,
    signed_tx text,
    sender character varying(42),
    sender_nonce bigint,
    reason text,
    failure text,
    created_by uuid,
    approved_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    claimed_at timestamp with time zone,
    approved_at timestamp with time zone,
    sent_at timestamp with time zone,
    completed_at timestamp with time zone,
    settled_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    lightning_invoice text,
    custodial boolean,
    node_id uuid,
    node_pubkey character varying(66),
    signed_at timestamp with time zone,
    CONSTRAINT transfers_amount_check CHECK ((amount > (0)::numeric)),
    CONSTRAINT transfers_check CHECK ((((kind)::text = 'refund'::text) = ((payment_id IS NOT NULL) AND (order_id IS NOT NULL) AND (variant IS NOT NULL) AND (claim_expires_at IS NOT NULL)))),
    CONSTRAINT transfers_check1 CHECK (((amount IS NOT NULL) OR ((variant)::text = 'fiat_fixed'::text))),
    CONSTRAINT transfers_check2 CHECK ((((status)::text = ANY ((ARRAY['awaiting_claim'::character varying, 'cancelled'::character varying])::text[])) OR (destination IS NOT NULL))),
    CONSTRAINT transfers_fee_bps_check CHECK (((fee_bps >= 0) AND (fee_bps <= 9999))),
    CONSTRAINT transfers_fiat_amount_check CHECK ((fiat_amount > (0)::numeric)),
    CONSTRAINT transfers_kind_check CHECK (((kind)::text = ANY ((ARRAY['refund'::character varying, 'payout'::character varying])::text[]))),
    CONSTRAINT transfers_method_check CHECK (((method)::text = ANY ((ARRAY['psbt'::character varying, 'hot_wallet'::character varying, 'external'::character varying, 'lightning'::character varying])::text[]))),
    CONSTRAINT transfers_rate_check CHECK ((rate > (0)::numeric)),
    CONSTRAINT transfers_status_check CHECK (((status)::text = ANY ((ARRAY['awaiting_claim'::character varying, 'awaiting_approval'::character varying, 'awaiting_signature'::character varying, 'sending'::character varying, 'in_flight'::character varying, 'completed'::character varying, 'cancelled'::character varying, 'failed'::character varying])::text[]))),
    CONSTRAINT transfers_variant_check CHECK (((variant)::text = ANY ((ARRAY['crypto_paid'::character varying, 'fiat_today'::character varying, 'fiat_fixed'::character varying, 'overpaid'::character varying, 'custom'::character varying])::text[])))
);

CREATE TABLE public.user_favorites (
    user_id uuid NOT NULL,
    kind character varying(8) NOT NULL,
    target_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT user_favorites_kind_check CHECK (((kind)::text = ANY ((ARRAY['product'::character varying, 'shop'::character varying])::text[])))
);

CREATE TABLE public.user_sessions (
    id_digest bytea NOT NULL,
    user_id uuid NOT NULL,
    public_id uuid DEFAULT gen_random_uuid() NOT NULL,
    second_factor boolean DEFAULT false NOT NULL,
    ip inet,
    user_agent character varying(300),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone
);

CREATE TABLE public.users (
    id uuid NOT NULL,
    display_name text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    email character varying(320),
    password_hash text,
    operator boolean DEFAULT false NOT NULL,
    totp_secret text,
    disabled_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    totp_last_step bigint,
    CONSTRAINT users_email_check CHECK (((email IS NULL) OR (((email)::text = lower(btrim((email)::text))) AND ((email)::text ~~ '%_@_%'::text))))
);

CREATE TABLE public.wallets (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id uuid NOT NULL,
    chain character varying(32) NOT NULL,
    account_key text,
    key_origin character varying(120),
    treasury character varying(42),
    gap_limit integer DEFAULT 20 NOT NULL,
    next_index bigint DEFAULT 0 NOT NULL,
    next_change bigint DEFAULT 0 NOT NULL,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    retired_at timestamp with time zone,
    CONSTRAINT wallets_check CHECK ((((chain)::text = 'btc'::text) = (account_key IS NOT NULL))),
    CONSTRAINT wallets_check1 CHECK ((((chain)::text = 'btc'::text) = (treasury IS NULL))),
    CONSTRAINT wallets_gap_limit_check CHECK (((gap_limit >= 1) AND (gap_limit <= 10000))),
    CONSTRAINT wallets_next_change_check CHECK ((next_change >= 0)),
    CONSTRAINT wallets_next_index_check CHECK ((next_index >= 0))
);

CREATE TABLE public.watched_addresses (
    chain character varying(32) NOT NULL,
    address character varying(128) NOT NULL,
    script bytea,
    derivation_index bigint,
    order_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    created_xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    wallet_id uuid,
    key_chain smallint,
    purpose character varying(16) DEFAULT 'deposit'::character varying NOT NULL,
    CONSTRAINT watched_addresses_derived CHECK (((derivation_index IS NULL) = (key_chain IS NULL))),
    CONSTRAINT watched_addresses_key_chain_check CHECK ((key_chain = ANY (ARRAY[0, 1]))),
    CONSTRAINT watched_addresses_purpose_check CHECK (((purpose)::text = ANY ((ARRAY['deposit'::character varying, 'change'::character varying, 'destination'::character varying])::text[])))
);

CREATE TABLE public.webhook_attempts (
    id bigint NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    status_code integer,
    error text,
    duration_ms integer NOT NULL,
    attempted_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.webhook_attempts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.webhook_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.webhook_deliveries (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    endpoint_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type character varying(64) NOT NULL,
    body text NOT NULL,
    status character varying(16) DEFAULT 'pending'::character varying NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    last_status integer,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    trace_parent character varying(55),
    CONSTRAINT webhook_deliveries_status_check CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'succeeded'::character varying, 'failed'::character varying])::text[])))
);

CREATE TABLE public.webhook_endpoints (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    shop_id uuid NOT NULL,
    url character varying(2000) NOT NULL,
    event_types text[] NOT NULL,
    secret text NOT NULL,
    description text,
    enabled boolean DEFAULT true NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    refund_claims boolean DEFAULT false NOT NULL
);

ALTER TABLE ONLY public.address_counters
    ADD CONSTRAINT address_counters_pkey PRIMARY KEY (chain);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_digest_key UNIQUE (key_digest);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.cart_items
    ADD CONSTRAINT cart_items_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.carts
    ADD CONSTRAINT carts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.carts
    ADD CONSTRAINT carts_user_id_shop_id_key UNIQUE (user_id, shop_id);

ALTER TABLE ONLY public.chain_blocks
    ADD CONSTRAINT chain_blocks_hash_uq UNIQUE (chain, hash);

ALTER TABLE ONLY public.chain_blocks
    ADD CONSTRAINT chain_blocks_pkey PRIMARY KEY (chain, height);

ALTER TABLE ONLY public.chain_cursors
    ADD CONSTRAINT chain_cursors_pkey PRIMARY KEY (chain);

ALTER TABLE ONLY public.coffee_orders
    ADD CONSTRAINT coffee_orders_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.coffee_shops
    ADD CONSTRAINT coffee_shops_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.coffee_supplies
    ADD CONSTRAINT coffee_supplies_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.coffee_supplies
    ADD CONSTRAINT coffee_supplies_shop_product_uq UNIQUE (shop_id, product_id);

ALTER TABLE ONLY public.crypto_payments
    ADD CONSTRAINT crypto_payments_order_uq UNIQUE (order_id);

ALTER TABLE ONLY public.crypto_payments
    ADD CONSTRAINT crypto_payments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.deposits
    ADD CONSTRAINT deposits_output_uq UNIQUE (chain, asset, txid, output_index);

ALTER TABLE ONLY public.deposits
    ADD CONSTRAINT deposits_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.event_outbox
    ADD CONSTRAINT event_outbox_event_id_key UNIQUE (event_id);

ALTER TABLE ONLY public.event_outbox
    ADD CONSTRAINT event_outbox_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.evm_sweeps
    ADD CONSTRAINT evm_sweeps_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (principal, key);

ALTER TABLE ONLY public.invitations
    ADD CONSTRAINT invitations_id_key UNIQUE (id);

ALTER TABLE ONLY public.invitations
    ADD CONSTRAINT invitations_pkey PRIMARY KEY (token_digest);

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_order_id_key UNIQUE (order_id);

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.lightning_invoices
    ADD CONSTRAINT lightning_invoices_pkey PRIMARY KEY (payment_hash);

ALTER TABLE ONLY public.lightning_nodes
    ADD CONSTRAINT lightning_nodes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.lightning_nodes
    ADD CONSTRAINT lightning_nodes_shop_id_key UNIQUE (shop_id);

ALTER TABLE ONLY public.notification_preferences
    ADD CONSTRAINT notification_preferences_pkey PRIMARY KEY (user_id);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_event_id_channel_recipient_key UNIQUE (event_id, channel, recipient);

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_claims
    ADD CONSTRAINT order_claims_code_uq UNIQUE (claim_code);

ALTER TABLE ONLY public.order_claims
    ADD CONSTRAINT order_claims_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_push_subscriptions
    ADD CONSTRAINT order_push_subscriptions_order_id_endpoint_key UNIQUE (order_id, endpoint);

ALTER TABLE ONLY public.order_push_subscriptions
    ADD CONSTRAINT order_push_subscriptions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.order_reservations
    ADD CONSTRAINT order_reservations_pkey PRIMARY KEY (order_id, supply_id);

ALTER TABLE ONLY public.output_spends
    ADD CONSTRAINT output_spends_pkey PRIMARY KEY (chain, txid, output_index, spending_txid);

ALTER TABLE ONLY public.payment_queue
    ADD CONSTRAINT payment_queue_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.push_subscriptions
    ADD CONSTRAINT push_subscriptions_endpoint_key UNIQUE (endpoint);

ALTER TABLE ONLY public.push_subscriptions
    ADD CONSTRAINT push_subscriptions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.seen_inputs
    ADD CONSTRAINT seen_inputs_pkey PRIMARY KEY (chain, txid, prev_txid, prev_vout);

ALTER TABLE ONLY public.shop_grants
    ADD CONSTRAINT shop_grants_pkey PRIMARY KEY (user_id, shop_id);

ALTER TABLE ONLY public.shop_products
    ADD CONSTRAINT shop_products_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.shop_products
    ADD CONSTRAINT shop_products_shop_product_uq UNIQUE (shop_id, product_id);

ALTER TABLE ONLY public.transfer_attempts
    ADD CONSTRAINT transfer_attempts_pkey PRIMARY KEY (transfer_id, txid);

ALTER TABLE ONLY public.transfer_inputs
    ADD CONSTRAINT transfer_inputs_pkey PRIMARY KEY (transfer_id, txid, output_index);

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.user_favorites
    ADD CONSTRAINT user_favorites_pkey PRIMARY KEY (user_id, kind, target_id);

ALTER TABLE ONLY public.user_sessions
    ADD CONSTRAINT user_sessions_pkey PRIMARY KEY (id_digest);

ALTER TABLE ONLY public.user_sessions
    ADD CONSTRAINT user_sessions_public_id_key UNIQUE (public_id);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.wallets
    ADD CONSTRAINT wallets_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.watched_addresses
    ADD CONSTRAINT watched_addresses_pkey PRIMARY KEY (chain, address);

ALTER TABLE ONLY public.webhook_attempts
    ADD CONSTRAINT webhook_attempts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_event_uq UNIQUE (endpoint_id, event_id);

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id);

CREATE INDEX api_keys_shops_idx ON public.api_keys USING gin (shop_ids);

CREATE INDEX audit_log_actor_idx ON public.audit_log USING btree (actor_id, id);

CREATE INDEX audit_log_entity_idx ON public.audit_log USING btree (entity_type, entity_id, id);

CREATE INDEX audit_log_time_idx ON public.audit_log USING btree (occurred_at);

CREATE INDEX cart_items_cart_idx ON public.cart_items USING btree (cart_id, added_at, id);

CREATE INDEX carts_expires_at_idx ON public.carts USING btree (expires_at);

CREATE INDEX coffee_orders_created_idx ON public.coffee_orders USING btree (created_at);

CREATE INDEX coffee_orders_order_status_idx ON public.coffee_orders USING btree (order_status);

CREATE INDEX coffee_orders_payment_status_idx ON public.coffee_orders USING btree (payment_status);

CREATE INDEX coffee_orders_shop_created_idx ON public.coffee_orders USING btree (shop_id, created_at, id);

CREATE INDEX coffee_orders_shop_idx ON public.coffee_orders USING btree (shop_id);

CREATE INDEX coffee_orders_user_created_idx ON public.coffee_orders USING btree (user_id, created_at, id);

CREATE INDEX coffee_orders_user_idx ON public.coffee_orders USING btree (user_id);

CREATE INDEX coffee_shops_created_idx ON public.coffee_shops USING btree (created_at, id);

CREATE INDEX coffee_shops_location_idx ON public.coffee_shops USING btree (latitude, longitude);

CREATE INDEX coffee_shops_status_idx ON public.coffee_shops USING btree (status);

CREATE INDEX coffee_supplies_product_idx ON public.coffee_supplies USING btree (product_id);

CREATE INDEX coffee_supplies_shop_idx ON public.coffee_supplies USING btree (shop_id);

CREATE INDEX coffee_supplies_status_idx ON public.coffee_supplies USING btree (status);

CREATE UNIQUE INDEX crypto_payments_address_uq ON public.crypto_payments USING btree (chain, wallet_address) WHERE (address_released_at IS NULL);

CREATE INDEX crypto_payments_expires_idx ON public.crypto_payments USING btree (expires_at);

CREATE INDEX crypto_payments_order_idx ON public.crypto_payments USING btree (order_id);

CREATE INDEX crypto_payments_status_idx ON public.crypto_payments USING btree (status);

CREATE INDEX crypto_payments_tx_idx ON public.crypto_payments USING btree (transaction_hash);

CREATE INDEX crypto_payments_user_idx ON public.crypto_payments USING btree (user_id);

CREATE INDEX crypto_payments_wallet_idx ON public.crypto_payments USING btree (wallet_id) WHERE (wallet_id IS NOT NULL);

CREATE INDEX deposits_address_idx ON public.deposits USING btree (chain, address);

CREATE INDEX deposits_confirming_idx ON public.deposits USING btree (chain, block_height) WHERE ((status)::text = 'confirming'::text);

CREATE INDEX deposits_open_idx ON public.deposits USING btree (chain, block_height) WHERE ((status)::text = ANY ((ARRAY['confirming'::character varying, 'confirmed'::character varying])::text[]));

CREATE INDEX deposits_seen_idx ON public.deposits USING btree (chain, txid) WHERE ((status)::text = 'seen'::text);

CREATE INDEX deposits_status_idx ON public.deposits USING btree (status);

CREATE INDEX event_journal_published_at ON public.event_journal USING brin (published_at);

CREATE INDEX event_outbox_aggregate_idx ON public.event_outbox USING btree (aggregate_id, id);

CREATE INDEX idempotency_keys_expires_idx ON public.idempotency_keys USING btree (expires_at);

CREATE INDEX invitations_shop_idx ON public.invitations USING btree (shop_id, created_at);

CREATE INDEX invoices_shop_created_idx ON public.invoices USING btree (shop_id, created_at, id);

CREATE INDEX ledger_entries_account_idx ON public.ledger_entries USING btree (account, chain, asset);

CREATE INDEX ledger_entries_group_idx ON public.ledger_entries USING btree (entry_group);

CREATE INDEX ledger_entries_imposed_idx ON public.ledger_entries USING btree (shop_id) WHERE ((kind)::text = ANY ((ARRAY['reversal'::character varying, 'refund_fee'::character varying, 'payout_fee'::character varying])::text[]));

CREATE INDEX ledger_entries_payment_idx ON public.ledger_entries USING btree (payment_id);

CREATE INDEX ledger_entries_shop_idx ON public.ledger_entries USING btree (shop_id, id);

CREATE UNIQUE INDEX ledger_entries_transfer_once_uq ON public.ledger_entries USING btree (transfer_id, kind, account) WHERE (transfer_id IS NOT NULL);

CREATE INDEX lightning_invoices_expiring_idx ON public.lightning_invoices USING btree (expires_at) WHERE ((state)::text = 'open'::text);

CREATE UNIQUE INDEX lightning_invoices_open_idx ON public.lightning_invoices USING btree (payment_id) WHERE ((state)::text = 'open'::text);

CREATE INDEX lightning_invoices_payment_idx ON public.lightning_invoices USING btree (payment_id);

CREATE UNIQUE INDEX lightning_nodes_platform_idx ON public.lightning_nodes USING btree (pubkey) WHERE (shop_id IS NULL);

CREATE INDEX notifications_due_idx ON public.notifications USING btree (next_attempt_at) WHERE ((status)::text = 'pending'::text);

CREATE INDEX notifications_inbox_idx ON public.notifications USING btree (user_id, created_at DESC) WHERE ((channel)::text = 'in_app'::text);

CREATE UNIQUE INDEX order_claims_live_order_uq ON public.order_claims USING btree (order_id) WHERE ((status)::text = ANY ((ARRAY['active'::character varying, 'processed'::character varying])::text[]));

CREATE INDEX order_claims_shop_idx ON public.order_claims USING btree (shop_id);

CREATE INDEX order_claims_status_idx ON public.order_claims USING btree (status);

CREATE INDEX order_claims_user_idx ON public.order_claims USING btree (user_id);

CREATE INDEX order_items_order_idx ON public.order_items USING btree (order_id);

CREATE INDEX order_items_product_idx ON public.order_items USING btree (product_id);

CREATE INDEX order_reservations_supply_idx ON public.order_reservations USING btree (supply_id);

CREATE INDEX output_spends_confirming_idx ON public.output_spends USING btree (chain, block_height) WHERE ((status)::text = 'confirming'::text);

CREATE INDEX output_spends_open_idx ON public.output_spends USING btree (chain, block_height) WHERE ((status)::text <> 'orphaned'::text);

CREATE INDEX output_spends_spender_idx ON public.output_spends USING btree (chain, spending_txid);

CREATE INDEX payment_queue_address_idx ON public.payment_queue USING btree (chain, address);

CREATE INDEX products_category_idx ON public.products USING btree (category);

CREATE INDEX products_created_idx ON public.products USING btree (created_at, id);

CREATE INDEX products_name_idx ON public.products USING btree (lower((name)::text) text_pattern_ops);

CREATE INDEX products_shop_idx ON public.products USING btree (shop_id) WHERE (shop_id IS NOT NULL);

CREATE INDEX products_status_idx ON public.products USING btree (status);

CREATE INDEX push_subscriptions_user_idx ON public.push_subscriptions USING btree (user_id) WHERE (gone_at IS NULL);

CREATE INDEX shop_grants_shop_idx ON public.shop_grants USING btree (shop_id);

CREATE INDEX shop_products_available_idx ON public.shop_products USING btree (available);

CREATE INDEX shop_products_product_idx ON public.shop_products USING btree (product_id);

CREATE INDEX shop_products_shop_idx ON public.shop_products USING btree (shop_id);

CREATE INDEX transfer_attempts_sender_idx ON public.transfer_attempts USING btree (sender, chain) WHERE (sender IS NOT NULL);

CREATE INDEX transfer_attempts_txid_idx ON public.transfer_attempts USING btree (chain, txid);

CREATE INDEX transfer_inputs_output_idx ON public.transfer_inputs USING btree (chain, txid, output_index);

CREATE INDEX transfers_batch_idx ON public.transfers USING btree (batch_id) WHERE (batch_id IS NOT NULL);

CREATE INDEX transfers_destination_idx ON public.transfers USING btree (chain, destination) WHERE (destination IS NOT NULL);

CREATE UNIQUE INDEX transfers_lightning_invoice_once ON public.transfers USING btree (destination) WHERE (((destination)::text ~~ 'lightning:%'::text) AND ((status)::text <> 'cancelled'::text));

CREATE INDEX transfers_payment_idx ON public.transfers USING btree (payment_id) WHERE (payment_id IS NOT NULL);

CREATE INDEX transfers_sending_idx ON public.transfers USING btree (chain) WHERE ((status)::text = 'sending'::text);

CREATE INDEX transfers_shop_idx ON public.transfers USING btree (shop_id, kind, created_at, id);

CREATE UNIQUE INDEX transfers_txid_once_uq ON public.transfers USING btree (chain, lower((txid)::text)) WHERE ((txid IS NOT NULL) AND (batch_id IS NULL) AND ((method)::text IS DISTINCT FROM 'lightning'::text));

CREATE INDEX user_sessions_user_idx ON public.user_sessions USING btree (user_id, created_at);

CREATE UNIQUE INDEX users_email_uq ON public.users USING btree (email);

CREATE UNIQUE INDEX wallets_active_uq ON public.wallets USING btree (shop_id, chain) WHERE (retired_at IS NULL);

CREATE INDEX watched_addresses_created_idx ON public.watched_addresses USING btree (chain, created_at);

CREATE INDEX watched_addresses_order_idx ON public.watched_addresses USING btree (order_id);

CREATE UNIQUE INDEX watched_addresses_platform_index_uq ON public.watched_addresses USING btree (chain, key_chain, derivation_index) WHERE ((wallet_id IS NULL) AND (derivation_index IS NOT NULL));

CREATE UNIQUE INDEX watched_addresses_wallet_index_uq ON public.watched_addresses USING btree (wallet_id, key_chain, derivation_index) WHERE (wallet_id IS NOT NULL);

CREATE INDEX watched_addresses_xid_idx ON public.watched_addresses USING btree (chain, created_xid);

CREATE INDEX webhook_attempts_delivery_idx ON public.webhook_attempts USING btree (delivery_id, id);

CREATE INDEX webhook_deliveries_due_idx ON public.webhook_deliveries USING btree (next_attempt_at) WHERE ((status)::text = 'pending'::text);

CREATE INDEX webhook_deliveries_endpoint_idx ON public.webhook_deliveries USING btree (endpoint_id, created_at);

CREATE INDEX webhook_endpoints_shop_idx ON public.webhook_endpoints USING btree (shop_id);

CREATE TRIGGER deposits_enqueue_inserted AFTER INSERT ON public.deposits REFERENCING NEW TABLE AS new_deposits FOR EACH STATEMENT EXECUTE FUNCTION public.deposits_enqueue_inserted();

CREATE TRIGGER deposits_enqueue_moved AFTER UPDATE ON public.deposits REFERENCING OLD TABLE AS old_deposits NEW TABLE AS new_deposits FOR EACH STATEMENT EXECUTE FUNCTION public.deposits_enqueue_moved();

CREATE TRIGGER ledger_append_only BEFORE DELETE OR UPDATE ON public.ledger_entries FOR EACH ROW EXECUTE FUNCTION public.ledger_append_only();

CREATE TRIGGER ledger_balanced AFTER INSERT ON public.ledger_entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_balanced();

CREATE TRIGGER ledger_no_overdraft AFTER INSERT ON public.ledger_entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_no_overdraft();

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (created_by) REFERENCES public.users(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.cart_items
    ADD CONSTRAINT cart_items_cart_id_fkey FOREIGN KEY (cart_id) REFERENCES public.carts(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.cart_items
    ADD CONSTRAINT cart_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id);

ALTER TABLE ONLY public.carts
    ADD CONSTRAINT carts_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.coffee_orders
    ADD CONSTRAINT coffee_orders_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.coffee_supplies
    ADD CONSTRAINT coffee_supplies_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id);

ALTER TABLE ONLY public.coffee_supplies
    ADD CONSTRAINT coffee_supplies_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.crypto_payments
    ADD CONSTRAINT crypto_payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.coffee_orders(id);

ALTER TABLE ONLY public.crypto_payments
    ADD CONSTRAINT crypto_payments_wallet_id_fkey FOREIGN KEY (wallet_id) REFERENCES public.wallets(id);

ALTER TABLE ONLY public.deposits
    ADD CONSTRAINT deposits_chain_address_fkey FOREIGN KEY (chain, address) REFERENCES public.watched_addresses(chain, address);

ALTER TABLE ONLY public.invitations
    ADD CONSTRAINT invitations_accepted_by_fkey FOREIGN KEY (accepted_by) REFERENCES public.users(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.invitations
    ADD CONSTRAINT invitations_invited_by_fkey FOREIGN KEY (invited_by) REFERENCES public.users(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.invitations
    ADD CONSTRAINT invitations_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.coffee_orders(id);

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES public.crypto_payments(id);

ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.transfers(id);

ALTER TABLE ONLY public.lightning_invoices
    ADD CONSTRAINT lightning_invoices_node_id_fkey FOREIGN KEY (node_id) REFERENCES public.lightning_nodes(id);

ALTER TABLE ONLY public.lightning_invoices
    ADD CONSTRAINT lightning_invoices_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES public.crypto_payments(id);

ALTER TABLE ONLY public.lightning_nodes
    ADD CONSTRAINT lightning_nodes_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.order_claims
    ADD CONSTRAINT order_claims_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.coffee_orders(id);

ALTER TABLE ONLY public.order_claims
    ADD CONSTRAINT order_claims_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.coffee_orders(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.order_items
    ADD CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id);

ALTER TABLE ONLY public.order_reservations
    ADD CONSTRAINT order_reservations_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.coffee_orders(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.order_reservations
    ADD CONSTRAINT order_reservations_supply_id_fkey FOREIGN KEY (supply_id) REFERENCES public.coffee_supplies(id);

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.shop_grants
    ADD CONSTRAINT shop_grants_granted_by_fkey FOREIGN KEY (granted_by) REFERENCES public.users(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.shop_grants
    ADD CONSTRAINT shop_grants_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.shop_grants
    ADD CONSTRAINT shop_grants_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.shop_products
    ADD CONSTRAINT shop_products_product_id_fkey FOREIGN KEY (product_id) REFERENCES public.products(id);

ALTER TABLE ONLY public.shop_products
    ADD CONSTRAINT shop_products_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.transfer_attempts
    ADD CONSTRAINT transfer_attempts_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.transfers(id);

ALTER TABLE ONLY public.transfer_inputs
    ADD CONSTRAINT transfer_inputs_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.transfers(id);

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_node_id_fkey FOREIGN KEY (node_id) REFERENCES public.lightning_nodes(id);

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.coffee_orders(id);

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES public.crypto_payments(id);

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_wallet_id_fkey FOREIGN KEY (wallet_id) REFERENCES public.wallets(id);

ALTER TABLE ONLY public.user_sessions
    ADD CONSTRAINT user_sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.wallets
    ADD CONSTRAINT wallets_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);

ALTER TABLE ONLY public.watched_addresses
    ADD CONSTRAINT watched_addresses_wallet_id_fkey FOREIGN KEY (wallet_id) REFERENCES public.wallets(id);

ALTER TABLE ONLY public.webhook_attempts
    ADD CONSTRAINT webhook_attempts_delivery_id_fkey FOREIGN KEY (delivery_id) REFERENCES public.webhook_deliveries(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES public.webhook_endpoints(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES public.coffee_shops(id);
