"""Stripe (银行卡 Card): hosted Checkout Sessions, signed webhooks, refunds. See gateway.py."""
