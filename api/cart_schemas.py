"""Carts and favourites at the edge: what a customer sends and gets back."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from beanpay.api.schemas import FieldError, Input, OptionName, OrderTerms, Quantity

Customizations = Annotated[dict[OptionName, Annotated[list[OptionName], Meta(max_length=20)]],
                           Meta(max_length=20, description="group name -> chosen option names")]


class CartQuery(Struct, forbid_unknown_fields=True):
    shop_id: uuid.UUID


class CartItemAdd(Input):
    shop_id: uuid.UUID
    product_id: uuid.UUID
    quantity: Quantity = 1
    customizations: Customizations = {}


class CartItemPatch(Input):
    quantity: Quantity | UnsetType = UNSET
    customizations: Customizations | UnsetType = UNSET


class CartCheckout(OrderTerms, kw_only=True):
    """The order's own fields (api.schemas.OrderTerms); its items are the cart's."""


class CartLine(Struct):
    id: uuid.UUID
    product_id: uuid.UUID
    product_name: str | None
    quantity: int
    customizations: dict[str, list[str]]
    unit_price: Decimal | None  # from the menu now; None when the line cannot be ordered as it is
    line_total: Decimal | None
    problems: list[FieldError]  # the field errors an order of this line would get


class Cart(Struct):
    shop_id: uuid.UUID
    currency: str
    items: list[CartLine]
    total: Decimal  # of the lines that can be ordered
    orderable: bool  # every line can be ordered as it is
    expires_at: dt.datetime | None  # pushed out by every change; None: no cart yet
    version: int | None


class Favorite(Struct):
    kind: Literal["product", "shop"]
    id: uuid.UUID
    created_at: dt.datetime


class Favorites(Struct):
    items: list[Favorite]
