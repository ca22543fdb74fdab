import msgspec

from beanpay.api.app import all_routes
from beanpay.api.openapi import build


def test_every_route_is_documented_with_its_types() -> None:
    doc = build(all_routes())
    assert doc["openapi"] == "3.1.0"
    for r in all_routes():
        op = doc["paths"][r.path][r.method.lower()]
        assert str(r.status) in op["responses"]
        if r.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    shop = doc["components"]["schemas"]["ShopCreate"]
    assert shop["required"] == ["name", "address"]
    assert doc["components"]["schemas"]["CustomizationGroup"]["properties"]["options"]["minItems"] == 1


def test_operation_ids_are_unique() -> None:
    """Links and clients name operations by id: two handlers of one name would make the document invalid."""
    ids = [r.handler.__name__ for r in all_routes()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_ref_resolves() -> None:
    doc = build(all_routes())
    text = msgspec.json.encode(doc).decode()
    import re

    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in doc["components"]["schemas"], name


def test_query_parameters_come_from_types() -> None:
    doc = build(all_routes())
    params = {p["name"]: p for p in doc["paths"]["/v1/shops"]["get"]["parameters"]}
    assert {"cursor", "limit", "near", "radius_km", "status"} <= set(params)
    assert params["limit"]["schema"]["maximum"] == 100
