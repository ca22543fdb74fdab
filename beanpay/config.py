"""Settings from `BEANPAY_*` environment variables, validated once at start-up.

Defaults point at the local stack that `beanpay dev up` runs. In the `dev` environment, secrets
that are not set (JWT secret, database and btcd passwords) are generated once into the state
folder; in any other environment a missing secret is a start-up error, never a default in code.
"""

from __future__ import annotations

import os
import secrets
import typing
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

import msgspec

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class ConfigError(Exception):
    """One line per bad or missing variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def default_state_dir() -> Path:
    """BEANPAY_STATE_DIR, else the working directory's .beanpay (never the install location)."""
    return Path(os.environ.get("BEANPAY_STATE_DIR") or Path.cwd() / ".beanpay")


class UnknownChain(ValueError):
    """A chain name that is not configured."""


class TokenConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    address: Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$")]
    decimals: Annotated[int, msgspec.Meta(ge=0, le=36)]


class RpcEndpointConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A further RPC endpoint of an EVM chain (a second provider, or one's own node)."""

    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,40}$")] | None = None  # in metrics and logs
    requests_per_second: Positive | None = None  # the plan's budget: requests wait rather than be refused

    def __repr__(self) -> str:  # providers put API keys in the URL
        return f"RpcEndpointConfig(name={self.name!r}, url=<hidden>)"


class EvmChainConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One EVM chain; BEANPAY_EVM_CHAINS is a JSON list of these."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{1,30}$")]
    chain_id: PositiveInt
    rpc_url: str  # the first endpoint; web3's calls (sweeps, payouts) use this one
    rpc_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,40}$")] | None = None  # shown, not its host
    endpoints: list[RpcEndpointConfig] = []  # further endpoints the indexer spreads over and fails over to
    max_head_lag_blocks: PositiveInt = 8  # an endpoint further behind the best head leaves the rotation
    getlogs_max_blocks: PositiveInt | None = None  # a known eth_getLogs cap; else learnt from the refusals
    tokens: list[TokenConfig] = []
    confirmations: PositiveInt = 3
    finality_depth: PositiveInt = 64
    finality: Literal["depth", "tag"] = "depth"  # tag: final is the node's `finalized` block (depth if it has none)
    poll_seconds: Positive = 1.0
    traces: bool = True  # internal ETH transfers via debug_traceBlockByNumber (callTracer)
    factory: str | None = None
    implementation: str | None = None
    treasury: str | None = None
    start_height: Annotated[int, msgspec.Meta(ge=0)] | None = None


class PayoutWallet(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A hot wallet that sends a shop's EVM refunds (or, owner "platform", custodial shops' refunds and
    payouts). Its key comes only from here: BEANPAY_PAYOUT_WALLETS_FILE, a secret file with a JSON list."""

    owner: str  # a shop id, or "platform"
    chain: str
    key: Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{64}$")]
    daily_limits: dict[str, str] = {}  # asset symbol -> base units it may send per 24 h (absent: nothing)

    def __repr__(self) -> str:  # never a key in a log or traceback
        return f"PayoutWallet(owner={self.owner!r}, chain={self.chain!r}, key=<hidden>)"


class OidcIssuer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An identity provider whose access tokens name customers; BEANPAY_OIDC_ISSUERS is a JSON list."""

    issuer: Annotated[str, msgspec.Meta(min_length=1)]
    audience: Annotated[str, msgspec.Meta(min_length=1)]
    jwks_url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    algorithms: tuple[Literal["RS256", "ES256"], ...] = ("RS256", "ES256")


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    env: Literal["dev", "test", "prod"] = "dev"
    log_format: Literal["console", "json"] | None = None  # default: json outside dev
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # OpenTelemetry: traces are exported over OTLP/HTTP to this collector (e.g. http://otel-collector:4318);
    # unset, nothing is recorded
    otlp_endpoint: str | None = None
    trace_sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0  # of new traces; a parent's choice is kept
    state_dir: str = msgspec.field(default_factory=lambda: str(default_state_dir()))

    # local stack ports (loopback), below the kernel's ephemeral range so clients never hold them
    pg_port: Port = 25432
    redis_port: Port = 26379
    kafka_port: Port = 29092
    kafka_controller_port: Port = 29093
    anvil_port: Port = 28545
    btcd_rpc_port: Port = 28334
    btcd_p2p_port: Port = 28444

    # service addresses; derived from the ports above unless set
    database_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap: str | None = None

    btcd_rpc_user: str = "beanpay"
    btcd_rpc_password: str | None = None

    # Bitcoin: the merchant's BIP84 account public key (xpub/zpub, tpub/vpub); in dev, the stack's wallet
    btc_network: Literal["mainnet", "testnet", "regtest"] = "regtest"
    btc_account_xpub: str | None = None
    btc_account_origin: str | None = None  # [fingerprint/84h/coin'h/account'h] of it, for PSBT signers
    btc_fee_rate_floor: PositiveInt = 2  # sat/vB: the least a refund or payout pays (regtest estimates nothing)
    btc_rpc_url: str | None = None
    btc_confirmations: PositiveInt = 3
    btc_finality_depth: PositiveInt = 100
    btc_poll_seconds: Positive = 1.0
    btc_start_height: Annotated[int, msgspec.Meta(ge=0)] | None = None  # default: the node's tip at first start
    btc_drop_after_seconds: Positive = 900.0  # a seen payment gone from the mempool this long (no conflict): dropped
    indexer_batch_blocks: PositiveInt = 50

    # EVM chains (JSON list); in dev, the anvil chain with the contracts the stack deployed
    evm_chains: list[EvmChainConfig] | None = None

    pg_user: str = "beanpay"
    pg_database: str = "beanpay"
    pg_password: str | None = None
    db_pool_min: PositiveInt = 4  # connections each pool opens at start (once the database answers)
    # Few: more backends than the database has cores only queue, and on a hot row (a popular product's
    # supply) they thrash its lock queue. On 2 cores, orders at 16 clients: 20 -> 763/s p99 76 ms,
    # 8 -> 932/s p99 44 ms (api_bench).
    db_pool_max: PositiveInt = 8

    metrics_port: Port | None = None  # each process's /healthz, /readyz and Prometheus /metrics (never the API port)

    api_host: str = "127.0.0.1"
    api_port: Port = 28080
    # a request has this long to send its request line and headers once its first byte came, and this long
    # for its body (a client trickling bytes is then closed); a kept-alive connection may idle this long
    api_header_timeout_seconds: Positive = 15.0
    api_body_timeout_seconds: Positive = 15.0
    api_idle_timeout_seconds: Positive = 75.0
    # on SIGTERM the API answers /readyz 503 for this long, still serving, before it stops taking
    # connections: longer than a load balancer needs to see it fail (HAProxy here: 2 checks 1 s apart)
    api_drain_seconds: Annotated[float, msgspec.Meta(ge=0)] = 3.0
    jwt_secret: str | None = None
    jwt_ttl_seconds: PositiveInt = 3600
    # the HS256 tokens `beanpay token` prints: for development and tests; off in prod unless set
    dev_tokens: bool | None = None
    oidc_issuers: list[OidcIssuer] = []
    oidc_clock_skew_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 60
    oidc_jwks_refresh_seconds: PositiveInt = 60  # an unknown kid refetches the keys at most this often

    session_ttl_seconds: PositiveInt = 12 * 3600
    invite_ttl_seconds: PositiveInt = 7 * 24 * 3600
    # how long who a credential is stays cached (in Redis, then in each process): a revocation is
    # published at once, and even were that message lost it holds everywhere within twice this (< 5 s)
    access_cache_seconds: Annotated[int, msgspec.Meta(ge=1, le=2)] = 2

    # rate limits per minute, shared by every API process through Redis; they fail open if Redis is down
    rate_limits: bool = True
    rate_limit_public_orders: PositiveInt = 20  # orders and invoices created by guests, per client IP
    rate_limit_logins: PositiveInt = 5  # failed logins, per account and per client IP
    rate_limit_anonymous: PositiveInt = 1200  # other anonymous requests, per client IP
    rate_limit_principal: PositiveInt = 600  # signed-in people and customers, per principal
    rate_limit_api_key: PositiveInt = 6000  # per API key
    trusted_proxies: list[str] = []  # CIDRs whose X-Forwarded-For is believed
    # event streams (checkout pages, shop boards) each API process holds open at once: per client address (an
    # IPv6 /64 is one), and per checkout link or signed-in principal, beyond them a 429; in all, beyond it a 503
    # (api.stream_limits)
    event_streams_per_address: PositiveInt = 64
    event_streams_per_holder: PositiveInt = 8
    event_streams_per_process: PositiveInt = 10_000

    idempotency_ttl_seconds: PositiveInt = 24 * 3600  # how long a retry is answered from the first request

    redis_timeout_seconds: Positive = 0.25
    redis_retry_after_seconds: Positive = 2.0

    # prices and quotes: rates are fiat per whole coin, keyed "ASSET:FIAT" (e.g. "BTC:USD")
    price_provider: Literal["static", "chainlink", "http"] = "static"
    static_rates: dict[str, Decimal] = msgspec.field(default_factory=lambda: {
        "BTC:USD": Decimal("65000"), "ETH:USD": Decimal("3200"), "tUSDC:USD": Decimal("1"),
        "BTC:EUR": Decimal("60000"), "ETH:EUR": Decimal("2950"), "tUSDC:EUR": Decimal("0.92")})
    chainlink_chain: str | None = None  # the EVM chain (by name) the feeds live on
    chainlink_feeds: dict[str, str] = {}  # "ETH:USD" -> AggregatorV3 feed address
    price_ticker_url: str = "https://api.coinbase.com"  # Coinbase-style /v2/prices/{A}-{F}/spot
    price_max_age_seconds: PositiveInt = 300  # an older rate is refused, never quoted
    price_refresh_seconds: Positive = 30.0
    payment_window_seconds: PositiveInt = 900
    # an address of an order that expired with nothing paid goes back to its shop wallet's pool this long
    # after the window (a payment still on its way then counts for the order holding the address)
    address_quarantine_seconds: Annotated[int, msgspec.Meta(ge=0)] = 3600
    underpay_tolerance_bps: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 50

    # engine workers
    engine_batch_size: PositiveInt = 25  # queued changes per settlement transaction
    engine_workers: PositiveInt = 4  # concurrent settlement loops per engine process
    engine_poll_seconds: Positive = 1.0
    claim_ttl_seconds: PositiveInt = 1800
    cart_ttl_seconds: PositiveInt = 7 * 24 * 3600  # a cart lives this long after its last change

    # pages: a checkout link opens its page this long after the order was made (then 410); receipts
    # link each transaction with a template per chain, "{txid}" replaced (none: the id is shown plain)
    checkout_link_days: PositiveInt = 30
    explorer_tx_urls: dict[str, str] = {}

    # merchant webhooks (Standard Webhooks); attempt n waits base * 2^(n-1), jittered, capped
    webhook_max_attempts: PositiveInt = 12
    webhook_backoff_seconds: Positive = 5.0
    webhook_backoff_cap_seconds: Positive = 3600.0
    webhook_timeout_seconds: Positive = 10.0
    webhook_allow_private: bool = False  # loopback/private receivers; on in dev and test
    webhook_group: str = "beanpay-webhooks"  # the Kafka consumer group of the fan-out

    # EVM sweeps: the key that pays gas for deploy-and-flush (it can only move funds to the treasury)
    sweeper_key: str | None = None
    payout_wallets: list[PayoutWallet] = []  # EVM refund hot wallets (keys from a secret file)
    refund_claim_seconds: PositiveInt = 30 * 24 * 3600  # how long a customer has to claim a refund
    # a refund's transaction unseen this long after sending is asked after; unknown to the node, it failed
    refund_drop_seconds: PositiveInt = 1800
    # the least a refund or payout sends, "chain/ASSET" -> base units (a string); an asset not named here:
    # BTC 1000 sat, ETH 10^13 wei, a token 0.01 of a unit (engine.transfers.rules.minimum_amount)
    transfer_minimums: dict[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{1,30}/[A-Za-z0-9._-]{1,16}$")],
                            Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,78}$")]] = {}

    # customer notifications (beanpay notify): email over SMTP (no host: no email), Web Push signed with a
    # VAPID key (none: no push; a secret, BEANPAY_VAPID_PRIVATE_KEY_FILE), links pointing at public_url
    public_url: str | None = None  # where links sent to people point; default http://api_host:api_port
    smtp_host: str | None = None
    smtp_port: Port = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "beanpay <noreply@beanpay.invalid>"
    smtp_timeout_seconds: Positive = 10.0
    vapid_private_key: str | None = None  # PEM, or the raw P-256 key in base64url
    vapid_subject: str = "mailto:operators@beanpay.invalid"
    notification_max_attempts: PositiveInt = 8
    notification_backoff_seconds: Positive = 5.0
    notification_group: str = "beanpay-notifications"  # the Kafka consumer group of the notifier

    # Lightning: the platform's own lnd (custodial; shops without a node of their own use it). REST URL, its
    # TLS certificate (a PEM file), and a macaroon (hex; a secret, BEANPAY_LIGHTNING_MACAROON_FILE) baked
    # for invoices:read invoices:write info:read offchain:read, so beanpay can never spend from it. Merchants'
    # own node credentials are kept encrypted with lightning_credentials_key (a secret of 32 bytes or more).
    lightning_rest_url: str | None = None
    lightning_tls_cert_file: str | None = None
    lightning_macaroon: str | None = None
    lightning_credentials_key: str | None = None
    # refunds over Lightning from the platform's node: a macaroon that may pay (a secret,
    # BEANPAY_LIGHTNING_PAY_MACAROON_FILE) and what it may pay out in a day (0: refunds go on chain)
    lightning_pay_macaroon: str | None = None
    lightning_pay_daily_limit_sat: Annotated[int, msgspec.Meta(ge=0)] = 0
    lightning_health_seconds: Positive = 5.0  # how often each node's reachability and inbound liquidity are read
    lnd_ports_base: Port = 28730  # dev stack: merchant node p2p/REST/gRPC at base+0..2, customer at base+10..12
    ha_ports_base: Port = 27000  # the highly available dev stack (`beanpay dev up --ha`): its ports from here up
    ha_standby_ports_base: Port = 27500  # its standby region (`just drill-region`): ports from here up

    # fault injection for crash tests: named points where the process dies at once (never in prod)
    fault_points: list[str] = []

    relay_batch_size: PositiveInt = 500
    relay_poll_seconds: Positive = 1.0
    relay_publish_timeout_seconds: Positive = 30.0
    # how long published events stay in the journal, the most `beanpay outbox replay` can publish again
    # after a region failover (far above MirrorMaker's lag, which is about a second)
    outbox_journal_seconds: Positive = 900.0

    def payout_wallet(self, owner: str, chain: str) -> PayoutWallet | None:
        return next((w for w in self.payout_wallets if w.owner == owner and w.chain == chain), None)

    def evm_chain(self, name: str) -> EvmChainConfig:
        """The configured EVM chain called `name`."""
        for chain in self.evm_chains or []:
            if chain.name == name:
                return chain
        configured = ", ".join(c.name for c in self.evm_chains or []) or "none"
        raise UnknownChain(f"unknown EVM chain {name!r}; configured: {configured}")

    @property
    def links_base(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def dsn(self) -> str:
        if self.database_url:
            return self.database_url
        password = quote(self.pg_password or "", safe="")
        return f"postgresql://{self.pg_user}:{password}@127.0.0.1:{self.pg_port}/{self.pg_database}"

    @property
    def btc_rpc(self) -> str:
        return self.btc_rpc_url or f"http://127.0.0.1:{self.btcd_rpc_port}"

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("console" if self.env == "dev" else "json")


_DEV_SECRETS = ("jwt_secret", "pg_password", "btcd_rpc_password")
# anvil's dev account 8: pays gas for sweeps on the local chain only
DEV_SWEEPER_KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
# anvil's dev account 7: the platform's payout hot wallet on the local chain (dev only), up to 1 ETH a day
DEV_PAYOUT_KEY = "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"


def dev_secret(state_dir: Path, name: str) -> str:
    """Read, or create once, a random secret for the local stack (mode 0600, git-ignored)."""
    path = state_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise ConfigError naming every bad variable."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    problems: list[str] = []
    known = set(Settings.__struct_fields__)
    _read_secret_files(environ, known, problems)
    for field in Settings.__struct_fields__:
        var = f"BEANPAY_{field.upper()}"
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            if raw.lstrip()[:1] in ("[", "{"):
                values[field] = msgspec.json.decode(f'{{"value": {raw}}}', type=_single_field(field)).value
            else:
                values[field] = msgspec.convert({"value": raw}, _single_field(field), strict=False).value
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            problems.append(f"{var}={raw!r}: {_reason(exc)}")
    for var in environ:
        if var.startswith("BEANPAY_") and var[len("BEANPAY_"):].lower() not in known and not var.endswith("_FILE"):
            problems.append(f"{var}: unknown setting")
    if problems:
        raise ConfigError(problems)
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.env == "prod" and settings.jwt_secret is not None and len(settings.jwt_secret.encode()) < 32:
        problems.append("BEANPAY_JWT_SECRET: at least 32 bytes in prod")
    if settings.db_pool_min > settings.db_pool_max:
        problems.append("BEANPAY_DB_POOL_MIN must not exceed BEANPAY_DB_POOL_MAX")
    missing = [name for name in _DEV_SECRETS if getattr(settings, name) is None]
    if settings.env == "prod" and settings.fault_points:
        problems.append("BEANPAY_FAULT_POINTS: fault injection is refused in prod")
    if settings.env == "prod":
        for name in missing:
            if name == "pg_password" and settings.database_url:
                continue
            problems.append(f"BEANPAY_{name.upper()}: required outside the dev and test environments")
    if problems:
        raise ConfigError(problems)
    if missing and settings.env != "prod":
        generated = {name: dev_secret(settings.state_path, name) for name in missing}
        settings = msgspec.structs.replace(settings, **generated)
    dev_chain = settings.state_path / "anvil" / "deployment.json"
    if settings.evm_chains is None and settings.env != "prod" and dev_chain.exists():
        chain = msgspec.json.decode(dev_chain.read_bytes(), type=EvmChainConfig)
        settings = msgspec.structs.replace(settings, evm_chains=[chain])
    if settings.dev_tokens is None:
        settings = msgspec.structs.replace(settings, dev_tokens=settings.env != "prod")
    if settings.env == "dev" and not settings.payout_wallets and settings.evm_chains:
        settings = msgspec.structs.replace(settings, payout_wallets=[PayoutWallet(
            owner="platform", chain=settings.evm_chains[0].name, key=DEV_PAYOUT_KEY,
            daily_limits={"ETH": str(10**18), "tUSDC": str(10**9)})])
    if settings.env != "prod" and settings.sweeper_key is None:
        settings = msgspec.structs.replace(settings, sweeper_key=DEV_SWEEPER_KEY)
    if settings.env != "prod" and "BEANPAY_WEBHOOK_ALLOW_PRIVATE" not in environ:
        settings = msgspec.structs.replace(settings, webhook_allow_private=True)
    if settings.lightning_credentials_key is None and settings.env != "prod":
        settings = msgspec.structs.replace(
            settings, lightning_credentials_key=dev_secret(settings.state_path, "lightning_credentials_key"))
    dev_lnd = settings.state_path / "lnd-merchant" / "data" / "beanpay"  # written by `beanpay dev up`
    if settings.lightning_rest_url is None and settings.env != "prod" and (dev_lnd / "invoice.macaroon.hex").exists():
        settings = msgspec.structs.replace(
            settings, lightning_rest_url=(dev_lnd / "rest_url").read_text().strip(),
            lightning_tls_cert_file=str(dev_lnd / "tls.cert"),
            lightning_macaroon=(dev_lnd / "invoice.macaroon.hex").read_text().strip())
        if settings.lightning_pay_macaroon is None and (dev_lnd / "pay.macaroon.hex").exists():
            settings = msgspec.structs.replace(
                settings, lightning_pay_macaroon=(dev_lnd / "pay.macaroon.hex").read_text().strip(),
                lightning_pay_daily_limit_sat=settings.lightning_pay_daily_limit_sat or 1_000_000)
    assets = {"btc/BTC"} | {f"{c.name}/{a}" for c in settings.evm_chains or []
                            for a in ["ETH", *(t.symbol for t in c.tokens)]}
    if unknown := sorted(set(settings.transfer_minimums) - assets):
        raise ConfigError([f"BEANPAY_TRANSFER_MINIMUMS: {', '.join(unknown)} is no asset paid in here "
                           f"(one of {', '.join(sorted(assets))})"])
    dev_xpub = settings.state_path / "secrets" / "btc_account_xpub"
    if settings.btc_account_xpub is None and settings.env != "prod" and dev_xpub.exists():
        settings = msgspec.structs.replace(settings, btc_account_xpub=dev_xpub.read_text().strip())
    return settings


def _read_secret_files(environ: dict[str, str], known: set[str], problems: list[str]) -> None:
    """BEANPAY_X_FILE names a file holding X (how container platforms hand out secrets); its text,
    stripped, takes X's place. Setting both is ambiguous and refused."""
    for var in [v for v in environ if v.startswith("BEANPAY_") and v.endswith("_FILE")]:
        target = var.removesuffix("_FILE")
        if target[len("BEANPAY_"):].lower() not in known:
            problems.append(f"{var}: unknown setting {target}")
            continue
        if environ.get(target):
            problems.append(f"{var}: {target} is set too; use one of them")
            continue
        try:
            environ[target] = Path(environ[var]).read_text().strip()
        except OSError as exc:
            problems.append(f"{var}: cannot read {environ[var]!r}: {exc.strerror}")


_field_types: dict[str, type] = {}


def _single_field(field: str) -> type:
    """A one-field Struct with the same type and constraints, so each variable is checked alone."""
    if field not in _field_types:
        annotation = typing.get_type_hints(Settings, include_extras=True)[field]
        _field_types[field] = msgspec.defstruct(f"_{field}", [("value", annotation)])
    return _field_types[field]


def _reason(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    return str(exc).replace(" - at `$.value`", "")
