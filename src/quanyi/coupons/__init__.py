"""Coupons (优惠券): kinds, scopes, distribution (public code, claim centre, issue, single-use code batches),
exact counts under concurrency, released with their order. The discount itself is a step of quanyi/pricing."""
