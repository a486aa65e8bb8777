"""WeChat Pay API v3 (微信支付): Native (QR code) payments, active query, refunds."""

from quanyi.payments.wechat.gateway import WechatConfig, WechatGateway

__all__ = ["WechatConfig", "WechatGateway"]
