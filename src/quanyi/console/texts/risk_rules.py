"""Texts of the risk rules editor."""

import quanyi.console.texts.ops  # noqa: F401 - the shared texts
from quanyi.console.i18n import MESSAGES, add_messages, console_text

add_messages({
    "menu.risk_rules": "风控规则",
    "rr.title": "风控规则",
    "rr.intro": "下单、支付和发货时逐条检查已启用的规则；命中规则中最严格的动作生效，分数累加后按阈值升级。修改即时生效。",
    "rr.new": "新建规则",
    "rr.edit": "编辑规则",
    "rr.none": "还没有规则",
    "rr.defaults": "补充缺少的默认规则",
    "rr.col.name": "名称",
    "rr.col.kind": "类型",
    "rr.col.action": "动作",
    "rr.col.score": "分数",
    "rr.col.stages": "阶段",
    "rr.col.state": "状态",
    "rr.action.allow": "放行（只加分）",
    "rr.action.challenge": "验证",
    "rr.action.review": "人工审核",
    "rr.action.deny": "拒绝",
    "rr.stage.order": "下单",
    "rr.stage.payment": "支付",
    "rr.stage.delivery": "发货",
    "rr.on": "启用",
    "rr.off": "停用",
    "rr.enable": "启用",
    "rr.disable": "停用",
    "rr.enabled": "启用此规则",
    "rr.params": "参数（JSON）",
    "rr.params_note": "参数随类型不同，见下方说明；保存时按类型校验。",
    "rr.reason_code": "原因代码",
    "rr.action_note": "“放行”只累加分数；其他动作命中即生效。买家只会看到中性提示，原因代码仅员工可见。",
    "rr.kinds": "规则类型与参数",
    "rr.policy": "分数阈值",
    "rr.policy_intro": "命中规则的分数累加，达到阈值即升级为验证、人工审核或拒绝；留空表示不按分数升级。",
    "rr.challenge_at": "验证",
    "rr.review_at": "人工审核",
    "rr.deny_at": "拒绝",
    "rr.m.created": "规则“{name}”已创建。",
    "rr.m.saved": "规则“{name}”已保存。",
    "rr.m.enabled": "规则“{name}”已启用。",
    "rr.m.disabled": "规则“{name}”已停用。",
    "rr.m.deleted": "规则“{name}”已删除（操作日志里保留了它的全部设置）。",
    "rr.delete": "删除规则",
    "rr.delete_confirm": "确定删除这条规则吗？删除后立即不再生效；只想暂停请用“停用”。",
    "rr.delete_note": "删除后下一次下单即不再使用此规则；操作日志保留它的全部设置，需要时可照此重建。只想暂时不用请“停用”。",
    "rr.m.policy_saved": "分数阈值已保存。",
    "rr.m.defaults": "已补充 {count} 条默认规则。",
    "err.invalid_rule_params": "规则参数不符合此类型的要求",
    "err.risk_rule_name_taken": "已有同名规则",
}, {
    "menu.risk_rules": "Risk rules",
    "rr.title": "Risk rules",
    "rr.intro": "Enabled rules are checked at checkout, payment and delivery; the strictest action of the rules hit wins, and scores add up to the thresholds. Changes apply at once.",
    "rr.new": "New rule",
    "rr.edit": "Edit rule",
    "rr.none": "No rules yet",
    "rr.defaults": "Add the missing default rules",
    "rr.col.name": "Name",
    "rr.col.kind": "Kind",
    "rr.col.action": "Action",
    "rr.col.score": "Score",
    "rr.col.stages": "Stages",
    "rr.col.state": "State",
    "rr.action.allow": "Allow (score only)",
    "rr.action.challenge": "Challenge",
    "rr.action.review": "Review",
    "rr.action.deny": "Deny",
    "rr.stage.order": "Order",
    "rr.stage.payment": "Payment",
    "rr.stage.delivery": "Delivery",
    "rr.on": "On",
    "rr.off": "Off",
    "rr.enable": "Enable",
    "rr.disable": "Disable",
    "rr.enabled": "Rule enabled",
    "rr.params": "Parameters (JSON)",
    "rr.params_note": "Parameters depend on the kind (see below) and are checked for it when saved.",
    "rr.reason_code": "Reason code",
    "rr.action_note": "Allow only adds its score; any other action applies when the rule is hit. Buyers see a neutral message; reason codes are for staff.",
    "rr.kinds": "Rule kinds and their parameters",
    "rr.policy": "Score thresholds",
    "rr.policy_intro": "Scores of the rules hit add up; reaching a threshold raises the decision to a challenge, a review or a denial. Blank: scores never raise it.",
    "rr.challenge_at": "Challenge at",
    "rr.review_at": "Review at",
    "rr.deny_at": "Deny at",
    "rr.m.created": "Rule “{name}” created.",
    "rr.m.saved": "Rule “{name}” saved.",
    "rr.m.enabled": "Rule “{name}” enabled.",
    "rr.m.disabled": "Rule “{name}” disabled.",
    "rr.m.deleted": "Rule “{name}” deleted (the audit log keeps all its settings).",
    "rr.delete": "Delete rule",
    "rr.delete_confirm": "Delete this rule? It stops applying at once; to pause it, disable it instead.",
    "rr.delete_note": "The next checkout no longer uses a deleted rule; the audit log keeps all its settings should you want it back. To stop it for a while, disable it instead.",
    "rr.m.policy_saved": "Thresholds saved.",
    "rr.m.defaults": "{count} default rules added.",
    "err.invalid_rule_params": "The parameters do not fit this kind of rule",
    "err.risk_rule_name_taken": "A rule with this name exists",
})

# What each rule kind checks, for the editor's help. English is the kind's own docstring (quanyi.risk.rules, the
# one description of the rule); a kind without a Chinese text here shows that docstring on both pages.
_KINDS_ZH = {
    "rr.kind.velocity": "在时间窗口内，同一 IP / 设备 / 联系方式的下单尝试超过 `max_count` 次；`shop` 统计全店的每一次下单。"
                        "`shop_without_device` 统计没有带本店设备 Cookie 下单的客户端地址（IP）（只有 X-Device-Id 请求头不算设备："
                        "脚本每次都能换一个新的），`sku_without_device` 统计对同一规格这样下单的地址：来自许多地址的无 Cookie "
                        "下单激增（代理池上的机器人）。同一地址的连续下单只算一次（由 `ip` 规则判断），因此不会让该规格的其他"
                        "无 Cookie 买家都要输入验证码。`payer` 统计同一付款账号（按支付渠道的标识）付款的订单数：仅在支付和发货阶段有值。",
    "rr.kind.distinct_contacts": "在时间窗口内，同一 IP、设备或付款账号使用了超过 `max_distinct` 个不同的联系方式"
                                 "（`payer`：一个付款账号为许多联系方式的订单付款；仅支付和发货阶段）。",
    "rr.kind.card_testing": "在时间窗口内，同一维度的小额订单（金额 <= max_amount_cents）超过 `max_count` 笔。",
    "rr.kind.failed_payments": "在时间窗口内，同一维度未付款（放弃或支付失败）的订单超过 `max_unpaid` 笔。"
                               "下单不足 `grace_seconds` 秒的订单可能仍会付款，不计入。",
    "rr.kind.amount_limit": "数量 / 金额上限：按单笔订单、按买家（联系方式）每个店铺日，或按规格每个店铺日汇总所有买家"
                            "（按日的范围：已付款或仍可付款的订单，加上本单）。`sku_id`：只针对该规格；`per_sku`（buyer_day）："
                            "每个规格单独计算，而不是合计。",
    "rr.kind.time_window": "在店铺时间 `start` 至 `end` 之间下的订单（HH:MM；可跨午夜）。",
    "rr.kind.new_account": "从未付款过的联系方式，下单金额至少 `min_amount_cents`。",
    "rr.kind.new_device": "付款过的联系方式，这次从从未付款过的设备和 IP 下单（疑似账号被盗）。没有设备标识的下单不做判断。",
    "rr.kind.block_list": "黑名单（拒绝）或白名单（跳过其他所有规则）：IP 或 CIDR、邮箱域名、手机号、设备。",
    "rr.kind.allow_list": "黑名单（拒绝）或白名单（跳过其他所有规则）：IP 或 CIDR、邮箱域名、手机号、设备。",
}


def _kind_texts() -> tuple[dict[str, str], dict[str, str]]:
    from quanyi.risk.rules import RULE_PARAMS

    known = {f"rr.kind.{kind}": (model.__doc__ or "").strip() for kind, model in RULE_PARAMS.items()}
    zh = {key: text for key, text in _KINDS_ZH.items() if key in known}
    return zh, {key: known[key] for key in zh}


add_messages(*_kind_texts())
add_messages({"rr.param.window_seconds": "滑动时间窗口（秒）"}, {"rr.param.window_seconds": "Sliding window in seconds"})

# The shipped default rules (risk.ruleset.DEFAULT_RULES) keep their English names as their identity ("add the
# missing default rules" finds them by name); the console shows each under its Chinese name. A rule the operator
# renamed or made has no text here and shows its own name.
_DEFAULT_RULES_ZH = {
    "disposable e-mail domains": "一次性邮箱域名",
    "ip burst": "同一 IP 短时间内频繁下单",
    "ip flood": "同一 IP 大量下单",
    "device burst": "同一设备短时间内频繁下单",
    "contact burst": "同一联系方式短时间内频繁下单",
    "contact repeat": "同一联系方式重复下单",
    "cookieless surge": "无设备标识的集中下单",
    "many contacts per ip": "同一 IP 使用多个联系方式",
    "many contacts per device": "同一设备使用多个联系方式",
    "card testing by ip": "疑似盗卡试探（按 IP）",
    "card testing by device": "疑似盗卡试探（按设备）",
    "card testing by contact": "疑似盗卡试探（按联系方式）",
    "abandoned payments by ip": "多次下单不付款（按 IP）",
    "abandoned payments by contact": "多次下单不付款（按联系方式）",
    "large order": "大数量订单",
    "high value": "高金额订单",
    "buyer daily amount": "买家单日累计金额",
    "night hours": "凌晨时段下单",
    "first purchase": "首次购买",
    "known buyer, new device": "老买家使用新设备",
    "payer burst": "同一付款账户短时间内频繁付款",
    "many contacts per payer": "同一付款账户对应多个联系方式",
}
add_messages({f"rr.rule.{name}": zh for name, zh in _DEFAULT_RULES_ZH.items()},
             {f"rr.rule.{name}": name for name in _DEFAULT_RULES_ZH})
add_messages({"rr.default_name": "出厂默认规则，页面上显示为“{shown}”；改名后显示您填写的名称。"},
             {"rr.default_name": "A shipped default rule, shown as “{shown}”; renamed, it shows the name you give it."})


def rule_name(name: str, locale: str) -> str:
    """A rule's name as the console shows it: a shipped default rule's in the page's language, any other rule's
    as the operator gave it."""
    key = f"rr.rule.{name}"
    return console_text(locale, key) if key in MESSAGES["zh-CN"] else name

# A rule kind's short name (the list's 类型 column, the kind chooser); its long description is rr.kind.<kind>.
add_messages({
    "rr.kind_name.velocity": "频率限制", "rr.kind_name.distinct_contacts": "联系方式数量",
    "rr.kind_name.card_testing": "盗卡试探", "rr.kind_name.failed_payments": "下单不付款",
    "rr.kind_name.amount_limit": "数量 / 金额上限", "rr.kind_name.time_window": "时间段",
    "rr.kind_name.new_account": "新买家", "rr.kind_name.new_device": "新设备",
    "rr.kind_name.block_list": "黑名单", "rr.kind_name.allow_list": "白名单",
}, {
    "rr.kind_name.velocity": "Velocity", "rr.kind_name.distinct_contacts": "Distinct contacts",
    "rr.kind_name.card_testing": "Card testing", "rr.kind_name.failed_payments": "Unpaid orders",
    "rr.kind_name.amount_limit": "Quantity / amount limit", "rr.kind_name.time_window": "Time window",
    "rr.kind_name.new_account": "New buyer", "rr.kind_name.new_device": "New device",
    "rr.kind_name.block_list": "Block list", "rr.kind_name.allow_list": "Allow list",
})
