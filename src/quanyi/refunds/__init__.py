"""Refunds (退款): full and partial refunds through each payment gateway, with key withdrawal and audit."""
