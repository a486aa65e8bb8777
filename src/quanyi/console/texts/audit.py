"""Texts of the staff audit log page."""

from quanyi.console.i18n import add_messages

add_messages({
    "menu.audit": "操作日志",
    "audit.title": "员工操作日志",
    "audit.intro": "控制台中每一次员工操作：谁、做了什么、对哪个对象、何时、从哪里。",
    "audit.actor": "员工",
    "audit.action": "操作",
    "audit.object": "对象",
    "audit.summary": "详情",
    "audit.ip": "来源",
    "audit.empty": "没有符合条件的记录",
    "audit.from": "日期从",
    "audit.to": "至",
}, {
    "menu.audit": "Audit log",
    "audit.title": "Staff audit log",
    "audit.intro": "Every staff action in the console: who, what, on which object, when and from where.",
    "audit.actor": "Staff",
    "audit.action": "Action",
    "audit.object": "Object",
    "audit.summary": "Details",
    "audit.ip": "From",
    "audit.empty": "No entries match",
    "audit.from": "From",
    "audit.to": "to",
})
