# beanpay tasks. `just demo` runs the main job, `just test` the tests; both set up what they need.
set shell := ["bash", "-euo", "pipefail", "-c"]

bin := ".venv/bin"

# list the recipes
default:
    @just --list

# install missing Debian packages and the Python environment (.venv) from the lock file, once
setup: deps venv
    test -f tests/browser/node_modules/axe-core/axe.min.js || npm ci --prefix tests/browser --silent --no-audit --no-fund

# the Debian packages the stack and the tests run (python3-venv among them), those missing only
deps:
    deploy/install-deps.sh

# the Python environment (.venv) from the lock file, once
venv:
    test -x {{bin}}/python || python3 -m venv .venv
    if ! cat pyproject.toml requirements-dev.lock | cmp -s - .venv/.installed; then \
        {{bin}}/pip install -q --upgrade pip \
        && {{bin}}/pip install -q --require-hashes -r requirements-dev.lock \
        && {{bin}}/pip install -q --no-deps -e . \
        && cat pyproject.toml requirements-dev.lock > .venv/.installed; \
    fi

# pin every Python dependency with hashes: requirements.lock (runtime) and requirements-dev.lock (tests, tools)
lock:
    test -x {{bin}}/uv || {{bin}}/pip install -q uv
    {{bin}}/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet --custom-compile-command "just lock" -o requirements.lock
    {{bin}}/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --quiet --custom-compile-command "just lock" -o requirements-dev.lock

# start the local stack (PostgreSQL, Redis, Kafka, anvil, btcd); a no-op when it runs
up: setup
    {{bin}}/beanpay dev up

# the highly available stack: PostgreSQL primary + synchronous standby under Patroni (three etcd members),
# HAProxy in front of PostgreSQL and the API, three Kafka nodes (RF 3, min ISR 2), Redis with three
# Sentinels, and two processes of every beanpay service
up-ha: setup
    {{bin}}/beanpay dev up --ha

# stop the highly available stack
down-ha:
    {{bin}}/beanpay dev down --ha

# stop the local stack
down:
    {{bin}}/beanpay dev down

# show each service's address, pid, version and health
status:
    {{bin}}/beanpay dev status

# apply database migrations
migrate: up
    {{bin}}/beanpay migrate

# the main job: every service, a seeded shop, three orders paid in BTC, ETH and tUSDC with real transactions,
# followed to confirmed, claimed and processed, with signed webhooks received and verified; prints the
# checkout, staff board and console URLs (`just demo --serve` keeps them up until Ctrl-C)
demo *args: migrate
    {{bin}}/python -m beanpay.deploy.demo {{args}}

# the Go tools the tests run (helm, promtool), built once into .beanpay/cache
tools: venv
    {{bin}}/python -m tests.integration.go_tools

# lint, type-check and run every test against the real stack (the 25 slowest are named at the end)
test: migrate tools
    {{bin}}/ruff check .
    {{bin}}/python -m tests.typecheck
    {{bin}}/pytest -q --durations=25

# the same, in two lanes at once: the drills tier beside the others, on chain nodes of its own (tests/tiers.py,
# its lines marked [drills]); about 18 minutes instead of 25, but tests that time a process's start still fail
# now and then under the drills' load (see the README)
test-lanes: migrate tools
    {{bin}}/ruff check .
    {{bin}}/python -m tests.typecheck
    {{bin}}/python -m tests.tiers --durations=25

# lint, type-check and the unit tier: no service needed, under a minute
test-fast: venv
    {{bin}}/ruff check .
    {{bin}}/python -m tests.typecheck
    {{bin}}/pytest -q -m unit tests/unit

# lint and type-check only
lint: setup
    {{bin}}/ruff check .
    {{bin}}/python -m tests.typecheck

# write beanpay/schema.sql: the schema the migrations produce (a test checks they still agree)
schema: up
    {{bin}}/python -m tests.schema_dump

# kill -9, in turn under a payment load, the PostgreSQL primary (and then a whole node), a Kafka broker, the
# Redis primary, an etcd member and one process of every beanpay service on the HA stack; report per fault
# the failed requests, their window and p99, then the invariants and Kafka read back (`--help` for sizes)
drill *args: setup
    {{bin}}/python -m beanpay.deploy.drills.failover {{args}}

# two regions: the HA stack (A) and its standby (B: a Patroni standby cluster, MirrorMaker 2, passive services,
# 40 ms away through toxiproxy); kill all of A under load, promote B, report recovery time and data lost with
# asynchronous and with synchronous cross-region replication, then the drill's invariants (`--help` for sizes)
drill-region *args: setup
    {{bin}}/python -m beanpay.deploy.drills.region {{args}}

# back up a cluster of its own with pgBackRest (WAL archive and a base backup), pay orders before and after a
# target time, lose the cluster, restore it to that time, and check beanpay finds every later payment again
restore-drill *args: up
    {{bin}}/python -m beanpay.deploy.drills.restore {{args}}

# serve the API and the outbox relay in one process
run: migrate
    {{bin}}/beanpay run

# benchmarks against the real stack, each with a baseline measured in the same run:
# HTTP (wrk vs bare aiohttp), the API under load (orders, 10,000 held connections, the closed-loop curve,
# mixed traffic), EVM and Bitcoin indexers (vs raw fetch from the node), and the engine (sustained
# payments through every service: block-to-confirmed and block-to-webhook latency, CPU per payment), and the
# checkout pages (page loads while one API process holds 2,000 open event streams, vs none open)
# (every benchmark runs; the recipe fails if any missed its target)
bench: migrate
    status=0; for b in http_bench api_bench evm_bench btc_bench engine_bench pages_bench lightning_bench; do {{bin}}/python -m tests.bench.$b || status=1; done; exit $status
