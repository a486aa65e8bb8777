"""支付宝 Alipay open-platform gateway (RSA2): page / wap / QR checkouts, notifications, query, refunds."""

from quanyi.payments.alipay.gateway import AlipayConfig, AlipayGateway

__all__ = ["AlipayConfig", "AlipayGateway"]
