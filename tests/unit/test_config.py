from pathlib import Path

import pytest

from beanpay.config import ConfigError, load_settings


def test_defaults_point_at_local_stack(tmp_path: Path) -> None:
    s = load_settings({"BEANPAY_STATE_DIR": str(tmp_path)})
    assert s.pg_port == 25432
    assert s.dsn.startswith("postgresql://beanpay:") and s.dsn.endswith("@127.0.0.1:25432/beanpay")
    assert s.kafka_servers == "127.0.0.1:29092"


def test_every_bad_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"BEANPAY_STATE_DIR": str(tmp_path), "BEANPAY_PG_PORT": "abc", "BEANPAY_API_PORT": "70000",
                       "BEANPAY_ENV": "staging", "BEANPAY_TYPO": "1"})
    text = "\n".join(err.value.problems)
    assert "BEANPAY_PG_PORT='abc': Expected `int`, got `str`" in text
    assert "BEANPAY_API_PORT='70000': Expected `int` <= 65535" in text
    assert "BEANPAY_ENV='staging'" in text
    assert "BEANPAY_TYPO: unknown setting" in text
    assert len(err.value.problems) == 4


def test_derived_urls_follow_ports(tmp_path: Path) -> None:
    s = load_settings({"BEANPAY_STATE_DIR": str(tmp_path), "BEANPAY_REDIS_PORT": "6400", "BEANPAY_KAFKA_PORT": "9999"})
    assert s.redis_dsn == "redis://127.0.0.1:6400/0"
    assert s.kafka_servers == "127.0.0.1:9999"


def test_prod_requires_secrets_and_generates_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"BEANPAY_STATE_DIR": str(tmp_path), "BEANPAY_ENV": "prod"})
    assert any("BEANPAY_JWT_SECRET" in p for p in err.value.problems)
    assert not (tmp_path / "secrets").exists()


def test_dev_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    a = load_settings({"BEANPAY_STATE_DIR": str(tmp_path)})
    b = load_settings({"BEANPAY_STATE_DIR": str(tmp_path)})
    assert a.jwt_secret == b.jwt_secret and a.jwt_secret and len(a.jwt_secret) >= 32
    assert (tmp_path / "secrets" / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_pool_bounds_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BEANPAY_DB_POOL_MIN must not exceed"):
        load_settings({"BEANPAY_STATE_DIR": str(tmp_path), "BEANPAY_DB_POOL_MIN": "30", "BEANPAY_DB_POOL_MAX": "5"})


def test_kafka_cluster_ids_never_start_with_a_dash(tmp_path: Path) -> None:
    """A cluster id starting with '-' is read as a flag by kafka-storage (seen once in CI)."""
    from beanpay.deploy.devstack.kafka import _cluster_id

    for i in range(300):
        run_dir = tmp_path / str(i)
        run_dir.mkdir()
        cid = _cluster_id(run_dir)
        assert not cid.startswith("-") and len(cid) == 22
        assert _cluster_id(run_dir) == cid


PROD = {"BEANPAY_ENV": "prod", "BEANPAY_PG_PASSWORD": "p" * 20, "BEANPAY_BTCD_RPC_PASSWORD": "b" * 20}


def test_secrets_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("s" * 40 + "\n")
    s = load_settings({"BEANPAY_STATE_DIR": str(tmp_path), **PROD, "BEANPAY_JWT_SECRET_FILE": str(secret)})
    assert s.jwt_secret == "s" * 40 and s.dev_tokens is False
    with pytest.raises(ConfigError) as err:
        load_settings({"BEANPAY_STATE_DIR": str(tmp_path), **PROD, "BEANPAY_JWT_SECRET_FILE": str(tmp_path / "no"),
                       "BEANPAY_NOPE_FILE": str(secret)})
    text = "\n".join(err.value.problems)
    assert "BEANPAY_JWT_SECRET_FILE: cannot read" in text and "BEANPAY_NOPE_FILE: unknown setting" in text
    with pytest.raises(ConfigError) as err:
        load_settings({"BEANPAY_STATE_DIR": str(tmp_path), **PROD, "BEANPAY_JWT_SECRET": "x" * 40,
                       "BEANPAY_JWT_SECRET_FILE": str(secret)})
    assert "use one of them" in "\n".join(err.value.problems)


def test_prod_refuses_a_short_jwt_secret_and_keeps_dev_tokens_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"BEANPAY_STATE_DIR": str(tmp_path), **PROD, "BEANPAY_JWT_SECRET": "short"})
    assert "BEANPAY_JWT_SECRET: at least 32 bytes in prod" in err.value.problems
    on = load_settings({"BEANPAY_STATE_DIR": str(tmp_path), **PROD, "BEANPAY_JWT_SECRET": "x" * 32,
                        "BEANPAY_DEV_TOKENS": "true"})
    assert on.dev_tokens is True  # only when asked for explicitly
    assert load_settings({"BEANPAY_STATE_DIR": str(tmp_path)}).dev_tokens is True
