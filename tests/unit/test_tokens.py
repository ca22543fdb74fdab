import time
import uuid

import jwt
import pytest

from beanpay.tokens import Claims, InvalidToken, issue, verify

SECRET = "s" * 40


def test_round_trip_and_scope() -> None:
    shop, other = uuid.uuid4(), uuid.uuid4()
    claims = verify(issue(Claims(sub=uuid.uuid4(), role="merchant", shops=[shop]), SECRET, ttl=60), SECRET)
    assert claims.role == "merchant"
    assert claims.can_manage(shop) and not claims.can_manage(other)


def test_operator_manages_any_shop_and_customer_none() -> None:
    assert Claims(sub=uuid.uuid4(), role="operator").can_manage(uuid.uuid4())
    shop = uuid.uuid4()
    assert not Claims(sub=uuid.uuid4(), role="customer", shops=[shop]).can_manage(shop)


def test_wrong_secret_expired_and_forged_role_are_refused() -> None:
    token = issue(Claims(sub=uuid.uuid4(), role="customer"), SECRET, ttl=60)
    with pytest.raises(InvalidToken):
        verify(token, "x" * 40)
    expired = issue(Claims(sub=uuid.uuid4(), role="customer"), SECRET, ttl=-10)
    with pytest.raises(InvalidToken, match="expired"):
        verify(expired, SECRET)
    now = int(time.time())
    forged = jwt.encode({"sub": str(uuid.uuid4()), "role": "root", "iss": "beanpay", "iat": now, "exp": now + 60},
                        SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        verify(forged, SECRET)


def test_none_algorithm_is_refused() -> None:
    now = int(time.time())
    unsigned = jwt.encode({"sub": str(uuid.uuid4()), "role": "operator", "iss": "beanpay", "iat": now,
                           "exp": now + 60}, key=None, algorithm="none")
    with pytest.raises(InvalidToken):
        verify(unsigned, SECRET)


def test_a_remembered_token_still_expires() -> None:
    token = issue(Claims(sub=uuid.uuid4(), role="customer"), SECRET, ttl=1)
    assert verify(token, SECRET).role == "customer"  # now remembered
    time.sleep(2.1)
    with pytest.raises(InvalidToken, match="expired"):
        verify(token, SECRET)
    with pytest.raises(InvalidToken):
        verify(token, "x" * 40)  # remembered per secret, never across secrets
