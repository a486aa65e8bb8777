"""Texts of the payment gateway pages."""

import quanyi.console.texts.ops  # noqa: F401 - the shared texts
from quanyi.console.i18n import add_messages

add_messages({
    "menu.gateways": "支付渠道",
    "gw.title": "支付渠道",
    "gw.intro": "配置收款账号并启用渠道。密钥加密保存，页面只显示是否已设置；保存后一分钟内所有服务器生效。",
    "gw.no_public_url": "未设置 QUANYI_PUBLIC_BASE_URL（店铺的公网地址），渠道无法启用：支付结果通知要发到这个地址。",
    "gw.col.gateway": "渠道",
    "gw.col.state": "状态",
    "gw.col.updated": "最近修改",
    "gw.active": "收款中",
    "gw.enabled_not_active": "已启用，尚未生效",
    "gw.disabled": "未启用",
    "gw.not_configured": "未配置",
    "gw.configure": "配置",
    "gw.sandbox": "沙箱（测试）",
    "gw.sandbox_note": "沙箱只能通过服务器配置 QUANYI_SANDBOX_ENABLED 开关，不能在此开启。",
    "gw.secret_kept": "已设置；留空则保持不变",
    "gw.secret_set": "已设置（不显示）",
    "gw.secret_unset": "未设置",
    "gw.enable": "启用此渠道收款",
    "gw.secret_note": "密钥只能写入，不能读出；填写新值即替换。",
    "gw.m.saved": "{name} 的配置已保存。",
    "err.invalid_gateway_config": "配置无效，未保存",
    "err.public_base_url_missing": "未设置店铺公网地址，不能启用",
}, {
    "menu.gateways": "Payment gateways",
    "gw.title": "Payment gateways",
    "gw.intro": "Set the payment accounts and switch gateways on. Secrets are stored encrypted and only shown as set or not; a change reaches every server within a minute.",
    "gw.no_public_url": "QUANYI_PUBLIC_BASE_URL (the shop's public address) is not set, so no gateway can be enabled: payment notifications are sent there.",
    "gw.col.gateway": "Gateway",
    "gw.col.state": "State",
    "gw.col.updated": "Last change",
    "gw.active": "Taking payments",
    "gw.enabled_not_active": "Enabled, not active yet",
    "gw.disabled": "Off",
    "gw.not_configured": "Not configured",
    "gw.configure": "Configure",
    "gw.sandbox": "Sandbox (testing)",
    "gw.sandbox_note": "The sandbox is switched only by the server setting QUANYI_SANDBOX_ENABLED, never from here.",
    "gw.secret_kept": "Set; leave blank to keep it",
    "gw.secret_set": "set (never shown)",
    "gw.secret_unset": "not set",
    "gw.enable": "Take payments with this gateway",
    "gw.secret_note": "Secrets are write-only: type a new value to replace one.",
    "gw.m.saved": "{name} configuration saved.",
    "err.invalid_gateway_config": "Configuration not valid; nothing saved",
    "err.public_base_url_missing": "The shop's public address is not set; cannot enable",
})

# A configuration field's hint where the gateway's own (its config model's description, shown otherwise) is not
# in the page's language.
add_messages({
    "gw.field.wechat.appid": "与商户号绑定的 AppID",
    "gw.field.wechat.apiv3_key": "APIv3 密钥：32 个 ASCII 字符",
    "gw.field.wechat.platform_certificate": "平台证书（PEM X.509，wechatpay_<serial>.pem；证书序列号和公钥从中读取）",
}, {
    "gw.field.wechat.appid": "the AppID bound to the merchant",
    "gw.field.wechat.apiv3_key": "APIv3 key: 32 ASCII characters",
    "gw.field.wechat.platform_certificate": "platform certificate (PEM X.509, wechatpay_<serial>.pem; serial and key "
                                            "are read from it)",
})
