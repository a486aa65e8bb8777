"""Wire dialects of supplier APIs; importing this package registers every built-in one."""

from quanyi.suppliers.dialects import async_recharge, card_platform, quanyi  # noqa: F401
