"""One price calculation (统一计价): list price → member price → coupons → points → payable.

`service.price_order` is the only function that says what an order costs; `arithmetic` holds its pure steps.
"""
