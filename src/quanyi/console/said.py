"""What the console says when a form or an action is refused, in the page's language: the one place that turns
what the request shapes (pydantic), the money parser and the services say (English, for the API and the logs) into
the console's Chinese. The API keeps its English messages and stable codes; a console page never shows them raw.

A refusal reaches a page as a string: a form's own code ("required"), an English message (a service's, the money
parser's, a request shape's custom check), or a `Said` (a request shape's standard check, by pydantic's error type
and its limits). `render_page` passes every form error and every refused action's detail through `say`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from pydantic_core import ErrorDetails

import quanyi.console.texts.said  # noqa: F401 - registers the texts
import quanyi.console.texts.said_setup  # noqa: F401 - registers the texts
from quanyi.console.i18n import MESSAGES, console_text

__all__ = ["Said", "from_validation", "say", "say_all", "localize"]


class Said(str):
    """A request shape's refusal: the English message as pydantic put it, with the console text key and values
    (`said.v.<type>`) that say it in the page's language."""

    key: str
    values: dict[str, Any]

    def __new__(cls, english: str, key: str, **values: Any) -> Said:
        said = super().__new__(cls, english)
        said.key, said.values = key, values
        return said


# pydantic error types the console says in its own words; money fields (*_cents) state their limits in yuan.
_TYPES = {"missing": "required", "string_too_short": "too_short", "string_too_long": "too_long",
          "too_long": "too_many", "string_pattern_mismatch": "pattern", "greater_than": "gt",
          "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le", "int_parsing": "whole",
          "int_type": "whole", "int_from_float": "whole", "literal_error": "choice", "enum": "choice",
          "datetime_parsing": "datetime", "datetime_from_date_parsing": "datetime", "datetime_type": "datetime",
          "timezone_aware": "datetime", "bool_parsing": "choice", "decimal_parsing": "number",
          "extra_forbidden": "unknown_field", "string_type": "text", "url_parsing": "url"}

# English messages (services, request shapes' own checks, the money parser, the console's form readers) and the
# text that says each; the groups fill the text's {0}, {1} ...
_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), key) for pattern, key in (
    (r"(?:Value error, )?ends_at must be after starts_at|the coupon must end after it starts", "after_start"),
    (r"max_quantity must be at least min_quantity", "quantity_bounds"),
    (r"only card-key SKUs let buyers pick a key.*", "pick_card_key_only"),
    (r"unsupported currency.*", "currency"),
    (r"must be an http\(s\) URL or a path on this shop", "url"),
    (r"contains characters not allowed in a URL", "url_chars"),
    (r"must not contain control characters", "control_chars"),
    (r"must be a single line", "single_line"),
    (r"use lowercase letters, digits and single hyphens.*", "slug"),
    (r"use letters, digits, '-', '_' and '\.'.*", "code_chars"),
    (r"a \w+ coupon needs \w+", "coupon_amount"),
    (r"give only the amount of the coupon's own kind", "coupon_one_amount"),
    (r"max_discount_cents caps percent_off coupons only", "coupon_cap_percent_only"),
    (r"a (?:public-)?code coupon needs (?:its|a) code, and only it has one", "coupon_code_only"),
    (r"only an issued coupon can be a sign-up gift", "signup_gift_issued"),
    (r"the code (.+) is already used", "coupon_code_taken"),
    (r"unknown scope kind .*", "scope_kind"),
    (r"no (category|product|sku|SKU) '?(.+?)'? among this shop's goods", "not_our_goods"),
    (r"at most (\d+) categories, products and SKUs", "scope_too_many"),
    (r"(\d+) are already taken: the total cannot be less", "total_below_taken"),
    (r"only issued or claimable coupons are handed to members", "issue_kind"),
    (r"this coupon can no longer be handed out", "issue_closed"),
    (r"codes are made for single-use-code coupons only", "codes_kind"),
    (r"a batch has 1 to (\d+) codes", "batch_size"),
    (r"this batch would pass the coupon's total quantity", "batch_over_total"),
    (r"this coupon has all been handed out", "sold_out"),
    (r"(.+) cannot be changed", "not_editable"),
    (r"\w+ cannot be null", "required"),
    (r"give at least one field to change", "nothing_changed"),
    (r"(category|product) slug '(.+)' is already used", "slug_taken"),
    (r"SKU code '(.+)' is already used", "sku_code_taken"),
    (r"SKU codes in one request must be distinct", "sku_codes_twice"),
    (r"(category|product|SKU|merchant) '?(.+?)'? does not exist", "not_found"),
    (r"coupon not found", "coupon_not_found"),
    (r"category (.+) still has products; move or delete them first", "category_has_products"),
    (r"(category|product) (.+) cannot be deleted: it is in the scope of (\d+) coupons? that ha(?:s|ve) not ended "
     r"\((.+)\), which would apply.*", "in_coupon_scope"),
    (r"the enterprise's account is suspended: .*", "enterprise_suspended"),
    (r"enterprise (.+) has no contact yet: .*", "enterprise_no_contact"),
    (r"a reason is required for every review decision", "review_reason"),
    (r"\w+ must be a date like 2026-12-31", "day"),
    # orders, manual delivery, refunds, risk review and rules, suppliers: what an operator meets most
    (r"order not found", "order_not_found"),
    (r"this order has not been delivered", "order_not_delivered"),
    (r"an order cannot go from (\w+) to (\w+)", "order_transition"),
    (r"give the codes to deliver, or a note saying what was done", "manual_empty"),
    (r"order (\S+) is a (\S+) order in status (\w+); only paid manual-delivery orders are delivered by hand",
     "manual_not_deliverable"),
    (r"the order is for (\d+): give at most that many codes .*", "manual_too_many"),
    (r"give either amount_cents or quantity, not both", "refund_both"),
    (r"amount_cents must be a positive number of cents", "refund_amount_positive"),
    (r"quantity must be at least 1", "refund_quantity_positive"),
    (r"the quantity must be a whole number", "refund_quantity_whole"),
    (r"this payment has already been refunded in full", "refund_full"),
    (r"a duplicate payment delivered nothing; refund an amount", "refund_duplicate_amount"),
    (r"nothing was delivered for this order; refund an amount", "refund_undelivered_amount"),
    (r"a delivered card-key order is refunded by the quantity of keys taken back", "refund_by_keys"),
    (r"the buyer holds (\d+) card keys of this order, not (\d+)", "refund_keys_held"),
    (r"only (\d+) of the buyer's (\d+) card keys were never revealed; revealed keys are not refundable .*",
     "refund_keys_revealed"),
    (r"the buyer holds no card keys of this order any more", "refund_no_keys"),
    (r"(\d+) keys of this discounted order were paid nothing; take back more keys", "refund_keys_free"),
    (r"(\d+) keys are worth (\d+) cents but only (\d+) are left to refund", "refund_keys_over"),
    (r"refund of (\d+) cents exceeds the (\d+) cents left to refund", "refund_over"),
    (r"an order that is (\w+) cannot be refunded", "refund_status"),
    (r"payment (\S+) was never paid", "refund_unpaid"),
    (r"this order has no confirmed payment to refund", "refund_no_payment"),
    (r"the card keys to take back are no longer with the buyer", "refund_keys_gone"),
    (r"refund '?(.+?)'? not found", "refund_not_found"),
    (r"other refunds have used this payment up since; this one cannot be retried", "refund_used_up"),
    (r"a refund cannot go from (\w+) to (\w+)", "refund_transition"),
    (r"this Idempotency-Key was already used for a different refund", "refund_key_reused"),
    (r"order (\S+) is (\w+), not under review", "review_not_held"),
    (r"no risk rule (\d+)", "risk_rule_not_found"),
    (r"a rule named '(.+)' exists", "risk_rule_taken"),
    (r"thresholds must be positive and challenge_at <= review_at <= deny_at", "risk_thresholds"),
    (r"supplier (\S+) has no product '(.+)' \(sync its catalog first\)", "supplier_no_product"),
    (r"SKU (\S+) is delivered by hand \((\w+)\); suppliers cannot fill it", "mapping_by_hand"),
    (r"SKU (\S+) is sold in (\w+) but the supplier product costs (\w+)", "mapping_currency"),
    (r"SKU (\S+) is (\w+) but (\S+) is (\w+)", "mapping_kind"),
    (r"supplier (\S+) is another merchant's account than SKU (\S+)'s", "mapping_merchant"),
    (r"SKU (\S+) is already mapped to (\S+)", "mapping_exists"),
    (r"mapping (\d+) does not exist", "mapping_not_found"),
    (r"SKU (\d+) is not mapped to (\S+)", "mapping_missing"),
    (r"credentials do not fit dialect (\w+): (.+)", "supplier_credentials"),
    (r"supplier code '(.+)' is already used", "supplier_code_taken"),
    (r"the stored credentials cannot be read; send new credentials", "supplier_credentials_unreadable"),
    (r"supplier '?(.+?)'? does not exist", "supplier_not_found"),
    (r"supplier (\S+) is disabled; enable it before syncing", "supplier_disabled"),
    (r"supplier (\S+) is being synced right now", "supplier_syncing"),
    # the enterprise portal's purchases, campaigns and users
    (r"purchase (\S+) is (\w+); only a paused purchase resumes", "purchase_not_paused"),
    (r"purchase (\S+) is already (\w+)", "purchase_over"),
    (r"Idempotency-Key (\S+) was used for a different purchase", "purchase_key_reused"),
    (r"a purchase with this Idempotency-Key is being made right now; retry", "purchase_key_busy"),
    (r"enterprise (\S+) has no purchase '(.+)'", "purchase_not_found"),
    (r"enterprise (\S+) has no campaign '(.+)'", "campaign_not_found"),
    (r"enterprise (\S+) has no user '(.+)'", "enterprise_user_not_found"),
    (r"enterprise (\S+) already has a user '(.+)'", "enterprise_user_taken"),
    (r"you cannot disable your own account or change your own role", "own_account"),
    (r"campaign (\S+) is (\w+); only a draft is activated", "campaign_not_draft"),
    (r"this campaign's end is already past; change the dates", "campaign_end_past"),
    (r"add employees before activating the campaign", "campaign_no_employees"),
    (r"a draft campaign is not running; there is nothing to end", "campaign_draft_end"),
    (r"campaign (\S+) has ended", "campaign_ended"),
    (r"no employees given", "employees_none"),
    (r"an employee_no appears twice in the list", "employees_twice"),
    (r"a campaign has at most (\d+) employees", "employees_too_many"),
    (r"an employee_no, WeCom user id or DingTalk union id is already on this campaign's roster", "employees_on_roster"),
    (r"employee_no '(.*)': 1-64 letters, digits, _ \. -", "employee_no_chars"),
    (r"employee (\S+): name must not be empty", "employee_name"),
    (r"employee (\S+): not a valid mobile number", "employee_phone"),
    (r"employee (\S+): not a valid e-mail address", "employee_email"),
    (r"employee (\S+): WeCom / DingTalk ids are at most 64 characters", "employee_ids"),
    (r"name must not be empty", "name_empty"),
    (r"ends_at is already past", "ends_past"),
    (r"list 1 to (\d+) SKUs employees can choose from", "campaign_options"),
    (r"budget_per_employee_cents must be a positive whole number of cents", "campaign_budget"),
    (r"no option fits in the budget per employee", "campaign_budget_small"),
    (r"a link lives between 1 minute and 7 days", "link_lifetime"),
    (r"line (\d+): give employee no,name.*", "roster_line"),
    (r"at most (\d+) employees per form", "roster_too_long"),
    # the console's own form readers (console/forms.py), naming the field
    (r"(\w+) is required", "form_required"),
    (r"(\w+) is longer than (\d+) characters", "form_too_long"),
    (r"(\w+) must be a whole number", "form_whole"),
    (r"(\w+) must be between (-?\d+) and (-?\d+)", "form_between"),
    (r"(\w+) must be an amount like 12\.34", "form_amount"),
    (r"(\w+) must be more than 0", "form_positive"),
    (r"(\w+) must be a percentage .*", "form_percent"),
    (r"not an amount: .*", "amount"),
    (r"'.*' has more than (\d+) decimal places for \w+", "amount_decimals"),
    (r"'.*' is larger than the maximum amount", "amount_too_large"),
    (r"'.*': commas may only separate thousands, like 1,500 or 12,345\.60", "amount_commas"),
    # second-factor enrolment (quanyi.second_factor): console and portal account pages
    (r"this enrolment form is not valid; start again", "enrolment_not_valid"),
    (r"this enrolment form has expired; start again", "enrolment_expired"),
    (r"the code does not match; check the time on the phone and try the next code", "enrolment_code_wrong"),
    (r"no such account", "enrolment_no_account"),
    (r"the second factor is already on; turn it off with a current code first", "second_factor_already_on"),
    # pydantic's wording, met inside a validation summary ("field: reason; field: reason", `_said_parts`)
    (r"Field required", "required"),
    (r"String should match pattern '.*'", "pd_pattern"),
    (r"String should have at most (\d+) characters?", "pd_too_long"),
    (r"String should have at least (\d+) characters?", "pd_too_short"),
    (r"Input should be a valid (?:number|decimal).*", "pd_number"),
    (r"Input should be a valid integer.*", "pd_whole"),
    (r"Input should be greater than or equal to (\S+)", "pd_ge"),
    (r"Input should be greater than (\S+)", "pd_gt"),
    (r"Input should be less than or equal to (\S+)", "pd_le"),
    (r"Input should be less than (\S+)", "pd_lt"),
    (r"Input should be a valid URL.*", "pd_url"),
    (r"Input should be (?:'[^']*'(?:, | or ))*'[^']*'|Input should be a valid boolean.*", "pd_choice"),
    (r"Extra inputs are not permitted", "pd_extra"),
    # enterprise customers: invoice data, contacts, tier prices, download links (console/texts/said_setup.py)
    (r"tax_number: a 统一社会信用代码 has 18 characters.*", "ent_tax_number"),
    (r"bank_account: 6-40 digits \(spaces and dashes allowed\)", "ent_bank_account"),
    (r"invoice_email must be an e-mail address", "ent_invoice_email_kind"),
    (r"invoice_email: (.+)", "ent_invoice_email"),
    (r"enterprise code: 1-48 characters of letters, digits, _ \. - \(starting alphanumeric\)", "ent_code"),
    (r"enterprise (\S+) already exists", "ent_exists"),
    (r"no enterprise '?(.+?)'?", "ent_not_found"),
    (r"contact name must not be empty", "ent_contact_name"),
    (r"role must be one of .*", "ent_contact_role"),
    (r"email: (.+)", "ent_contact_email"),
    (r"phone: (.+)", "ent_contact_phone"),
    (r"a contact needs an e-mail address or a phone number", "ent_contact_needs"),
    (r"enterprise (\S+) has no contact (\d+)", "ent_contact_not_found"),
    (r"enter an e-mail address or a mobile number", "contact_empty"),
    (r"not a valid e-mail address", "contact_email"),
    (r"not a valid phone number", "contact_phone"),
    (r"not a valid e-mail address or mobile number", "contact_either"),
    (r"give at least one tier \(min_quantity 1 for a flat negotiated price\)", "tier_none"),
    (r"at most (\d+) tiers", "tier_too_many"),
    (r"min_quantity must be a whole number from 1 to 1000000", "tier_min_quantity"),
    (r"unit_price_cents must be a positive whole number of cents", "tier_unit_price"),
    (r"two tiers start at (\d+)", "tier_twice"),
    (r"the tier from (\d+) costs more per item than the tier from (\d+); tiers must not rise with quantity",
     "tier_rises"),
    (r"purchase (\S+) has no live link (\d+)", "link_not_found"),
    (r"this download link is not valid \(expired, used up or unknown\); ask for a new one", "link_invalid"),
    # payment gateway configuration: the summary of what the gateway's settings say of the form
    (r"(\w+) configuration is not valid: (.+)", "gateway_config"),
    (r"(.+) \((\w+)\) cannot be enabled without QUANYI_PUBLIC_BASE_URL.*", "gateway_needs_url"),
    (r"quanyi has no gateway called '(.+)'; known: .*", "gateway_unknown"),
    (r"a Stripe secret key starts with sk_ \(or rk_ for a restricted key\)", "stripe_secret_key"),
    (r"a Stripe webhook signing secret starts with whsec_", "stripe_webhook_secret"),
    (r"(\w+) must be an http\(s\) URL without query, e\.g\. (\S+)", "http_url_plain"),
    (r"(\w+) must be an http\(s\) URL", "http_url"),
    (r"platform_public_key and platform_public_key_id go together.*", "wechat_key_pair"),
    (r"give the WeChat Pay public key with its ID .*", "wechat_verify"),
    (r"the APIv3 key must be exactly 32 ASCII characters", "wechat_apiv3"),
    (r"a key must be PEM or base64 DER", "key_format"),
    (r"not a usable private key: .*", "key_private"),
    (r"not a usable public key: .*", "key_public"),
    (r"the (?:merchant private key|platform public key|private key) must be RSA of at least (\d+) bits",
     "key_rsa_bits"),
    (r"not a PEM private key \(apiclient_key\.pem\)", "key_pem_private"),
    (r"not a PEM public key \(the WeChat Pay platform public key\)", "key_pem_public"),
    (r"not a PEM X\.509 certificate .*", "cert_pem"),
    (r"the platform certificate file is too large to be WeChat Pay certificates", "cert_too_large"),
    # supplier credentials: what a dialect's adapter says of them, and the supplier forms
    (r"(?:\S+: )?(\w+) credentials need (\w+) and (\w+)", "credentials_need"),
    (r"missing field '(.+)'", "missing_field"),
    (r"credential (\w+) is required", "credential_required"),
    (r"to replace the credentials type all of them \(missing: (.+)\); leave all blank to keep the stored ones",
     "credentials_all"),
    (r"dialect: choose one of .*", "dialect_choice"),
    (r"currency must be one of .*", "currency_choice"),
    (r"status must be one of .*", "status_choice"),
    (r"no adapter for dialect '(.+)'; known: .*", "dialect_unknown"),
    (r"credentials of supplier (\S+) cannot be read: .*", "credentials_unreadable"),
    # staff and console access
    (r"you cannot disable your own account", "staff_own_disable"),
    (r"you cannot reset your own second factor.*", "staff_own_reset"),
    (r"unknown permission\(s\): (.+?); known: .*", "staff_permissions"),
    (r"unknown role\(s\) for this staff member: (.+?); known: .*", "staff_roles"),
    (r"no staff member named '?(.+?)'?", "staff_not_found"),
    (r"staff member '?(.+?)'? already exists", "staff_exists"),
    (r"(\S+) has no second factor to reset", "staff_no_second_factor"),
    (r"this needs the (\S+) permission", "needs_permission"),
    (r"only platform staff can open this page", "platform_only"),
    (r"categories are platform configuration", "categories_platform"),
    (r"your role \((\w+)\) cannot do this", "portal_role"),
    # the console's own forms elsewhere: coupons, level gifts, orders, shared codes, reconciliation, risk rules
    (r"no such batch of this coupon", "coupon_batch_not_found"),
    (r"coupon_ids must be coupon ids", "coupon_ids"),
    (r"only a delivered order's notice can be sent again", "notice_not_delivered"),
    (r"give the sale limit as a whole number", "sale_limit_whole"),
    (r"no gateway '(.+)' takes payments in this shop", "reconcile_gateway"),
    (r"params is not valid JSON: (.+) \(line (\d+)\)", "risk_params_json"),
    (r"params must be a JSON object: .*", "risk_params_object"),
    (r"unknown rule kind '(.+)'", "risk_rule_kind"),
    (r"(.+) did not open a cashier page", "cashier_not_opened"),
    # 循环卡密 shared codes and 自选卡密 labels; a card-key line's reasons (the shared-code form, key imports)
    (r"the sale limit must be between 1 and (\d+)", "sale_limit_range"),
    (r"not a valid code: (.+)", "code_invalid"),
    (r"this code is already in the shop \(as a card key or a shared code\)", "code_known"),
    (r"(\d+) units are already sold or held: the limit cannot be lower", "sale_limit_below_sold"),
    (r"SKU (\S+) is not a 循环卡密 SKU", "not_shared_sku"),
    (r"shared code (\d+) does not exist", "shared_code_not_found"),
    (r"a label is at most (\d+) characters", "label_too_long"),
    (r"some of these card keys do not exist", "labels_unknown_keys"),
    (r"at most (\d+) keys at a time", "labels_too_many"),
    (r"shorter than (\d+) characters", "line_too_short"),
    (r"(code|card number|password) is empty", "line_field_empty"),
    (r"(code|card number|password) is longer than (\d+) characters", "line_field_too_long"),
    (r"(code|card number|password) contains (?:control characters|an invisible or unassigned character)",
     "line_field_chars"),
    (r"expiry '(.+)' is not a (?:date like 2027-06-30|real date)", "line_expiry"),
    (r"already expired on (\S+)", "line_expired"),
    (r"(\d+) fields; expected code, or card number and password, and an optional expiry", "line_fields"),
    (r"duplicate of line (\d+) in this file", "line_duplicate_of"),
    (r"duplicate of an earlier line in this file", "line_duplicate"),
    (r"already in stock for this SKU", "line_in_stock"),
    (r"already in stock for another SKU \(id (\d+)\)", "line_in_other_stock"),
    # why an order moved (orders/state.py TRANSITIONS), as its file and timeline record it
    (r"payment confirmed", "order_paid"),
    (r"reservation expired or buyer cancelled", "order_cancelled"),
    (r"payment arrived after the order was cancelled", "order_paid_late"),
    (r"goods handed over", "order_delivered"),
    (r"paid but could not be delivered", "order_undeliverable"),
    (r"refunded in full", "order_refunded"),
    (r"refunded in full before delivery", "order_refunded_early"),
    (r"every card key withdrawn and refunded", "order_keys_refunded"),
    (r"held by risk control for review", "order_held"),
    (r"approved by risk review", "order_approved"),
    (r"rejected by risk review: refund required", "order_rejected"),
    # gateway settlements (ledger.gateway_payouts)
    (r"settlement (\S+) of (\w+) was already recorded by (.+) at (\S+); nothing was booked again",
     "payout_exists"),
    (r"settlement (\S+) of (\w+) (?:was recorded at the same time|is already booked)", "payout_exists_now"),
    (r"net \+ fee \((.+)\) is more than (\w+) owes the shop: its clearing account holds (.+)", "payout_over"),
    (r"no gateway '(.+)': it is not configured and nothing was ever paid through it", "payout_gateway"),
    (r"payments from prepaid balances never leave the shop: .*", "payout_balance"),
    (r"gateway must be a gateway name like alipay or wechat", "payout_gateway_name"),
    (r"settlement_no must be the gateway's settlement id: .*", "payout_settlement_no"),
    (r"currency must be one of .*", "currency"),
    (r"net_cents \+ fee_cents must not exceed \d+", "amount_too_large"),
    (r"the period must not end before it begins", "payout_period_order"),
    (r"a settlement period is at most (\d+) days", "payout_period_long"),
    (r"the period ends after today \((\S+)\): .*", "payout_period_future"),
    (r"the period must begin on (\S+) or later", "payout_period_early"),
    # what the ledger's postings say they were (their memos, in English for the books), on the ledger pages
    (r"(\w+) payment (\S+) for order (\S+)", "memo_payment"),
    (r"order (\S+) delivered", "memo_delivered"),
    (r"order (\S+) could not be delivered", "memo_undeliverable"),
    (r"refund (\S+) refused; request reversed", "memo_refund_refused"),
    (r"refund (\S+) paid out by (\w+)", "memo_refund_paid"),
    (r"refund (\S+) credited to customer account (\d+)", "memo_refund_credited"),
    (r"refund (\S+): (.*)", "memo_refund"),
    (r"paid from customer account (\d+)", "memo_customer_paid"),
    (r"purchase attempt (\S+)", "memo_purchase"),
    (r"purchase attempt (\S+) failed: (.*)", "memo_purchase_failed"),
    (r"purchase attempt (\S+) cost (\d+), (\d+) less than debited", "memo_purchase_cheaper"),
    (r"purchase attempt (\S+) succeeded after its order was settled", "memo_purchase_late"),
    (r"withdrawal (\S+) of (\S+) paid \((.*)\)", "memo_withdrawal"),
    (r"commission withdrawal (\S+) of (\S+) paid \((.*)\)", "memo_commission"),
    (r"(\w+) settlement (\S+) (\S+)\.\.(\S+): net (\d+) fee (\d+) refunds (\d+) (\w+)", "memo_payout"),
    (r"(\w+) settlement (\S+) (\S+)\.\.(\S+): net (\d+) fee (\d+) refunds (\d+) (\w+); (.*)", "memo_payout_note"),
    (r"(\w+) trade (\S+): top-up (\S+) paid again \(credited by trade (\S+)\); owed back", "memo_top_up_twice"),
    (r"(\w+) trade (\S+) \(a second payment of a top-up\) refunded at the gateway", "memo_top_up_refunded"),
    (r"unclaimed budget of benefit campaign (\S+)", "memo_campaign_return"),
    (r"budget of benefit campaign (\S+)", "memo_campaign_budget"),
    (r"(\d+) points spent on order (\S+)", "memo_points_spent"),
    (r"point value (\d+) -> (\d+) cents", "memo_points_revalued"),
    (r"(\d+) points of member (\d+) expired", "memo_points_expired"),
    (r"(\d+) points of order (\S+) returned: (.*)", "memo_points_returned"),
    (r"(\d+) points earned by order (\S+)", "memo_points_earned"),
    (r"order (\S+): (\d+) points clawed back for refunds", "memo_points_clawback"),
    # why the reconciliation report lists a difference (payments/reconciliation.py, enterprises' online top-ups)
    (r"could not ask (\w+): (.+)", "rc_unreachable"),
    (r"payment gateway '(.+)' is not configured", "rc_gateway_missing"),
    (r"the gateway took a different amount than we asked for; not applied", "rc_amount"),
    (r"repaired: payment confirmed now, order (\w+)", "rc_repaired"),
    (r"could not be confirmed: (.+)", "rc_not_confirmed"),
    (r"we recorded another gateway transaction for this payment", "rc_trade"),
    (r"we recorded this payment as paid but the gateway has no paid trade", "rc_not_paid"),
    (r"refund query failed: (.+)", "rc_refund_unreachable"),
    (r"we recorded the refund as paid out but the gateway did not refund it", "rc_refund_not_paid"),
    (r"the gateway refunded it; the refund loop records it on its next attempt", "rc_refund_late"),
    (r"the gateway refunded a refund we recorded as failed", "rc_refund_failed_here"),
    (r"refunded amounts differ", "rc_refund_amounts"),
    (r"the gateway reports the refund failed; the refund loop records it on its next attempt", "rc_refund_failed"),
    (r"enterprise (\S+) online top-up paid a second time \(credited by trade (\S+)\): owed back; refund it at the "
     r"gateway, then mark it refunded", "rc_top_up_twice"),
    (r"enterprise (\S+) online top-up: (.+)", "rc_top_up"),
    (r"we credited this top-up but the gateway has no paid trade", "rc_top_up_not_paid"),
    (r"the gateway took a different amount than we asked for; not credited", "rc_top_up_amount"),
    (r"could not be credited: (.+)", "rc_top_up_not_credited"),
    (r"repaired: credited now", "rc_top_up_repaired"),
    (r"we credited this top-up under another gateway transaction", "rc_top_up_trade"),
))
# How a message's groups are said, by position: "s" an order / refund status, "p" a bulk purchase's, "c" a
# campaign's, "e" what a payment did to its order (effect.*), "y" cents in yuan, "m" a message inside the message,
# "f" a field of a card-key line, "t" an ISO time (on the shop's clock, as the pages show times, when the page gives
# its zone), "-" as it is.
_GROUPS = {"order_transition": "ss", "manual_not_deliverable": "--s", "refund_keys_over": "-yy", "refund_over": "yy",
           "refund_status": "s", "refund_transition": "ss", "review_not_held": "-s", "purchase_not_paused": "-p",
           "purchase_over": "-p", "campaign_not_draft": "-c", "supplier_credentials": "-m", "gateway_config": "-m",
           "ent_invoice_email": "m", "ent_contact_email": "m", "ent_contact_phone": "m", "code_invalid": "m",
           "line_field_empty": "f", "line_field_too_long": "f", "line_field_chars": "f", "payout_exists": "---t",
           "memo_refund": "-m", "memo_purchase_failed": "-m", "memo_purchase_cheaper": "-yy", "memo_payout": "----yyy",
           "memo_payout_note": "----yyy", "memo_points_returned": "--m", "rc_unreachable": "-m", "rc_repaired": "e",
           "rc_not_confirmed": "m", "rc_refund_unreachable": "m", "rc_top_up": "-m", "rc_top_up_not_credited": "m"}
_SUMMARY_PART = re.compile(r"([\w.]*): (.+)", re.S)  # "field: reason" of a validation summary
_KINDS = {"category": "said.kind.category", "product": "said.kind.product", "sku": "said.kind.sku",
          "SKU": "said.kind.sku", "merchant": "said.kind.merchant"}


def _yuan(cents: Any) -> str:
    return f"{Decimal(int(cents)) / 100:.2f}"


_STATUS_TEXTS = {"s": "status.", "p": "ent.purchase.", "c": "ent.campaign.", "e": "effect."}


def _time(text: str, zone: tzinfo | None) -> str:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if zone is None or moment.tzinfo is None:
        return text
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")  # the `local_time` filter's format


def _group(locale: str, group: str | None, how: str, zone: tzinfo | None) -> str:
    if group is None:
        return ""
    if how == "y":
        return _yuan(group)
    if how == "t":
        return _time(group, zone)
    if how == "m":
        return str(say(group, locale, zone=zone))
    if how == "f":
        return console_text(locale, "said.line." + group.replace(" ", "_"))
    if how in _STATUS_TEXTS:
        key = _STATUS_TEXTS[how] + group
        return console_text(locale, key) if key in MESSAGES["zh-CN"] else group
    return console_text(locale, _KINDS[group]) if group in _KINDS else group


def _said_parts(summary: str, locale: str, zone: tzinfo | None) -> str | None:
    """A validation summary ("field: reason; field: reason", as the console's forms and the gateway settings put
    them) with each reason said in the page's language; None when the console has words for none of them."""
    parts, said_any = [], False
    for part in summary.split("; "):
        found = _SUMMARY_PART.fullmatch(part)
        field, reason = (found.group(1), found.group(2)) if found else ("", part)
        reason = reason.removeprefix("Value error, ")
        said = say(reason, locale, zone=zone)  # shorter than `summary`: the recursion ends
        said_any = said_any or said != reason
        parts.append(f"{field}：{said}" if field else said)
    return "；".join(parts) if said_any else None


def from_validation(error: ErrorDetails) -> str:
    """One error of a request shape, as a `Said` when the console has its own words for it."""
    english = str(error["msg"]).removeprefix("Value error, ")
    kind = _TYPES.get(error["type"])
    if kind is None:
        return english
    values = dict(error.get("ctx") or {})
    field = str(error["loc"][-1]) if error["loc"] else ""
    if field.endswith("_cents") and kind in ("gt", "ge", "lt", "le"):
        limit = values.get(kind)
        return Said(english, f"said.v.money_{kind}", limit=_yuan(limit if limit is not None else 0))
    return Said(english, f"said.v.{kind}", **{k: v for k, v in values.items() if isinstance(v, int | str)})


def say(said: Any, locale: str, *, zone: tzinfo | None = None) -> Any:
    """`said` in the page's language: a form code, a `Said`, or an English message the console knows; anything
    else as it is (English pages: the English message, which names the details exactly). `zone`: the shop's,
    for the times a message names."""
    if not isinstance(said, str) or not said:
        return said
    if isinstance(said, Said):
        return console_text(locale, said.key, **said.values) if locale != "en" else str(said)
    if f"said.f.{said}" in MESSAGES["zh-CN"]:
        return console_text(locale, f"said.f.{said}")
    if locale == "en":
        return said
    for pattern, key in _MESSAGES:
        found = pattern.fullmatch(said)
        if found:
            hows = _GROUPS.get(key, "")
            groups = [_group(locale, g, hows[i] if i < len(hows) else "-", zone)
                      for i, g in enumerate(found.groups())]
            return console_text(locale, f"said.m.{key}").format(*groups)
    if _SUMMARY_PART.fullmatch(said.split("; ")[0]):  # a validation summary: its reasons said one by one
        return _said_parts(said, locale, zone) or said
    return said


def say_all(errors: Mapping[str, Any] | None, locale: str, *, zone: tzinfo | None = None) -> dict[str, Any]:
    """A form's errors, field by field, in the page's language."""
    return {field: say(message, locale, zone=zone) for field, message in (errors or {}).items()}


def localize(context: dict[str, Any], locale: str, *, zone: tzinfo | None = None) -> dict[str, Any]:
    """The page context with the refusals it carries in the page's language (render_page): form errors
    (`errors`, `*_errors`) and a refused action's `detail`."""
    said = {name: say_all(value, locale, zone=zone) if (name == "errors" or name.endswith("_errors"))
            and isinstance(value, Mapping) else value for name, value in context.items()}
    message = said.get("message")
    if isinstance(message, tuple) and len(message) == 3 and isinstance(message[1], dict) \
            and "detail" in message[1]:
        detail = say(message[1]["detail"], locale, zone=zone)
        said["message"] = (message[0], {**message[1], "detail": detail}, message[2])
    return said
