"""Texts of refusals (console/said.py) of 循环卡密 shared codes, 自选卡密 labels and a card-key line's reasons (the
shared-code form, key imports), with the English messages that say them (said.m, filled with the message's details
in order; said.line names a line's field)."""

from quanyi.console.i18n import add_messages

add_messages({
    # 循环卡密 shared codes, 自选卡密 labels, a card-key line's reasons
    "said.m.sale_limit_range": "限售数量须在 1 至 {0} 之间",
    "said.m.code_invalid": "卡密无效：{0}",
    "said.m.code_known": "店里已有这个卡密（作为卡密或循环卡密）",
    "said.m.sale_limit_below_sold": "已售出或占用 {0} 份：限售数量不能更少",
    "said.m.not_shared_sku": "规格 {0} 不是循环卡密规格",
    "said.m.shared_code_not_found": "循环卡密 {0} 不存在",
    "said.m.label_too_long": "标签最多 {0} 个字符",
    "said.m.labels_unknown_keys": "其中有些卡密不存在",
    "said.m.labels_too_many": "一次最多保存 {0} 个卡密的标签",
    "said.m.line_too_short": "少于 {0} 个字符",
    "said.m.line_field_empty": "{0}为空",
    "said.m.line_field_too_long": "{0}超过 {1} 个字符",
    "said.m.line_field_chars": "{0}含有控制字符或不可见字符",
    "said.m.line_expiry": "有效期 {0} 不是有效日期（格式如 2027-06-30）",
    "said.m.line_expired": "已于 {0} 过期",
    "said.m.line_fields": "有 {0} 列：每行应为卡密，或卡号和密码，可再加一列有效期",
    "said.m.line_duplicate_of": "与本文件第 {0} 行重复",
    "said.m.line_duplicate": "与本文件中前面的一行重复",
    "said.m.line_in_stock": "此规格的库存中已有",
    "said.m.line_in_other_stock": "已在另一个规格（ID {0}）的库存中",
    "said.line.code": "卡密", "said.line.card_number": "卡号", "said.line.password": "密码",
    # the source the shop itself names a key batch by (inventory)
    "said.m.batch_shared_code": "循环卡密",
    "said.m.batch_manual": "手动发货（订单 {0}）",
    "said.m.batch_supplier": "供应商 {0} 采购 {1}",
}, {
    "said.m.sale_limit_range": "the sale limit must be between 1 and {0}",
    "said.m.code_invalid": "not a valid code: {0}",
    "said.m.code_known": "this code is already in the shop (as a card key or a shared code)",
    "said.m.sale_limit_below_sold": "{0} units are already sold or held: the limit cannot be lower",
    "said.m.not_shared_sku": "SKU {0} is not a 循环卡密 SKU",
    "said.m.shared_code_not_found": "shared code {0} does not exist",
    "said.m.label_too_long": "a label is at most {0} characters",
    "said.m.labels_unknown_keys": "some of these card keys do not exist",
    "said.m.labels_too_many": "at most {0} keys at a time",
    "said.m.line_too_short": "shorter than {0} characters",
    "said.m.line_field_empty": "{0} is empty",
    "said.m.line_field_too_long": "{0} is longer than {1} characters",
    "said.m.line_field_chars": "{0} contains control or invisible characters",
    "said.m.line_expiry": "expiry {0} is not a date like 2027-06-30",
    "said.m.line_expired": "already expired on {0}",
    "said.m.line_fields": "{0} fields; expected code, or card number and password, and an optional expiry",
    "said.m.line_duplicate_of": "duplicate of line {0} in this file",
    "said.m.line_duplicate": "duplicate of an earlier line in this file",
    "said.m.line_in_stock": "already in stock for this SKU",
    "said.m.line_in_other_stock": "already in stock for another SKU (id {0})",
    "said.line.code": "code", "said.line.card_number": "card number", "said.line.password": "password",
    "said.m.batch_shared_code": "shared code",
    "said.m.batch_manual": "manual delivery of order {0}",
    "said.m.batch_supplier": "supplier {0} purchase {1}",
})

# English message -> text[, how its groups are said] (console/said.py)
PATTERNS: tuple[tuple[str, ...], ...] = (
    # 循环卡密 shared codes and 自选卡密 labels; a card-key line's reasons (the shared-code form, key imports)
    (r"the sale limit must be between 1 and (\d+)", "sale_limit_range"),
    (r"not a valid code: (.+)", "code_invalid", "m"),
    (r"this code is already in the shop \(as a card key or a shared code\)", "code_known"),
    (r"(\d+) units are already sold or held: the limit cannot be lower", "sale_limit_below_sold"),
    (r"SKU (\S+) is not a 循环卡密 SKU", "not_shared_sku"),
    (r"shared code (\d+) does not exist", "shared_code_not_found"),
    (r"a label is at most (\d+) characters", "label_too_long"),
    (r"some of these card keys do not exist", "labels_unknown_keys"),
    (r"at most (\d+) keys at a time", "labels_too_many"),
    (r"shorter than (\d+) characters", "line_too_short"),
    (r"(code|card number|password) is empty", "line_field_empty", "f"),
    (r"(code|card number|password) is longer than (\d+) characters", "line_field_too_long", "f"),
    (r"(code|card number|password) contains (?:control characters|an invisible or unassigned character)",
     "line_field_chars", "f"),
    (r"expiry '(.+)' is not a (?:date like 2027-06-30|real date)", "line_expiry"),
    (r"already expired on (\S+)", "line_expired"),
    (r"(\d+) fields; expected code, or card number and password, and an optional expiry", "line_fields"),
    (r"duplicate of line (\d+) in this file", "line_duplicate_of"),
    (r"duplicate of an earlier line in this file", "line_duplicate"),
    (r"already in stock for this SKU", "line_in_stock"),
    (r"already in stock for another SKU \(id (\d+)\)", "line_in_other_stock"),
    # a key batch's source as the shop names it (inventory.shared_codes, orders.manual, suppliers.fulfilment)
    (r"shared code", "batch_shared_code"),
    (r"manual:(\S+)", "batch_manual"),
    (r"supplier:([^:\s]+):(\S+)", "batch_supplier"),
)
