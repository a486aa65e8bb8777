"""Texts every operations page shares: the menu groups they live in, save buttons, a refused action."""

from quanyi.console.i18n import add_messages

add_messages({
    "group.supply": "供应",
    "group.finance": "财务",
    "group.partners": "商户与分销",
    "ops.save": "保存",
    "ops.refused": "操作未完成，未做任何更改",
    "ops.platform_only": "仅平台员工可用",
    "ops.not_found": "未找到",
    "ops.not_found_text": "您要找的内容不存在，或不在您的管理范围内。",
    "err.invalid_form": "表单填写有误，未做任何更改",
    "err.invalid_input": "输入有误，未做任何更改",
}, {
    "group.supply": "Supply",
    "group.finance": "Finance",
    "group.partners": "Merchants & resellers",
    "ops.save": "Save",
    "ops.refused": "Not done; nothing was changed",
    "ops.platform_only": "Platform staff only",
    "ops.not_found": "Not found",
    "ops.not_found_text": "What you are looking for does not exist, or is outside what you manage.",
    "err.invalid_form": "The form is not filled in correctly; nothing was changed",
    "err.invalid_input": "The input is not valid; nothing was changed",
})
