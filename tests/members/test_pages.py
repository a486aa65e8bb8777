"""Account pages (zh-CN / en): log in / sign up by code through forms, my orders, an order opened from the account,
password login, log out everywhere; errors re-render the form with a clear status."""

from __future__ import annotations

import re

from helpers import page_csrf_token
from members.support import last_code

HTML = {"Accept": "text/html"}


async def _post(client, url: str, data: dict[str, str], page: str):
    token = page_csrf_token((await client.get(page, headers=HTML)).text)
    return await client.post(url, data={**data, "csrf_token": token}, headers=HTML)


async def _log_in_by_page(shop, client, contact: str):
    login = await client.get("/account/login", headers=HTML)
    sent = await client.post("/account/login/code", headers=HTML, data={
        "contact": contact, "next": "/account", "csrf_token": page_csrf_token(login.text)})
    assert sent.status_code == 200 and 'data-testid="code-sent"' in sent.text, sent.text
    code_id = re.search(r'name="code_id" value="([^"]+)"', sent.text).group(1)
    return await client.post("/account/login/verify", headers=HTML, data={
        "code_id": code_id, "code": await last_code(shop, contact), "contact": contact, "next": "/account",
        "csrf_token": page_csrf_token(sent.text)})


async def test_sign_up_by_code_in_the_browser_shows_my_orders_and_opens_them(shop, client, stocked_sku):
    assert (await client.get("/account", headers=HTML)).headers["location"] == "/account/login?next=/account"
    guest = await shop.create_order(stocked_sku.id, contact="page@example.com")
    await shop.pay(guest)
    verified = await _log_in_by_page(shop, client, "page@example.com")
    assert verified.status_code == 303 and verified.headers["location"] == "/account?attached=1"
    page = await client.get(verified.headers["location"], headers=HTML)
    assert page.status_code == 200
    assert "已将 1 个使用该联系方式的历史订单归入您的账户" in page.text
    assert f'data-order-no="{guest["order_no"]}"' in page.text and "已发货" in page.text
    opened = await client.get(f"/account/orders/{guest['order_no']}", headers=HTML)
    assert opened.status_code == 303 and opened.headers["location"] == f"/orders/{guest['order_no']}"
    order_page = await client.get(opened.headers["location"], headers=HTML)
    assert order_page.status_code == 200 and guest["order_no"] in order_page.text  # not sent to the lookup form
    product = await client.get("/p/product-1", headers=HTML)  # a member's contact is filled in at checkout
    assert 'id="contact" name="contact" type="text" autocomplete="email" maxlength="254" value="page@example.com"' \
        in product.text
    english = await client.get("/account?lang=en", headers=HTML)
    assert "My orders" in english.text and "Delivered" in english.text


async def test_an_order_of_someone_else_is_not_opened_from_the_account(shop, client, stocked_sku):
    other = await shop.create_order(stocked_sku.id, contact="other@example.com")
    await _log_in_by_page(shop, client, "me@example.com")
    response = await client.get(f"/account/orders/{other['order_no']}", headers=HTML)
    assert response.status_code == 404
    assert "qy_orders" not in response.headers.get("set-cookie", "")


async def test_wrong_code_and_bad_contact_re_render_the_form(shop, client):
    bad = await _post(client, "/account/login/code", {"contact": "not a contact"}, "/account/login")
    assert bad.status_code == 422 and "请输入有效的邮箱地址或手机号" in bad.text
    login = await client.get("/account/login", headers=HTML)
    sent = await client.post("/account/login/code", headers=HTML, data={
        "contact": "wrong@example.com", "csrf_token": page_csrf_token(login.text)})
    code_id = re.search(r'name="code_id" value="([^"]+)"', sent.text).group(1)
    code = await last_code(shop, "wrong@example.com")
    wrong = "000000" if code != "000000" else "111111"
    response = await client.post("/account/login/verify", headers=HTML, data={
        "code_id": code_id, "code": wrong, "csrf_token": page_csrf_token(sent.text)})
    assert response.status_code == 422 and "验证码不正确，还可尝试 4 次" in response.text
    malformed = await client.post("/account/login/verify", headers=HTML, data={
        "code_id": code_id, "code": "12ab", "csrf_token": page_csrf_token(sent.text)})
    assert malformed.status_code == 422 and "请输入 6 位数字验证码" in malformed.text
    assert "qy_member" not in response.headers.get("set-cookie", "")


async def test_password_set_on_the_account_page_then_password_login_and_log_out_everywhere(shop, client):
    await _log_in_by_page(shop, client, "pw@example.com")
    weak = await _post(client, "/account/password", {"password": "short"}, "/account")
    assert weak.status_code == 422 and "密码需 8–128 位" in weak.text
    saved = await _post(client, "/account/password", {"password": "correct horse battery"}, "/account")
    assert saved.status_code == 303 and saved.headers["location"] == "/account?saved=password"
    out = await _post(client, "/account/logout-everywhere", {}, "/account")
    assert out.status_code == 303 and (await client.get("/account", headers=HTML)).status_code == 303
    wrong = await _post(client, "/account/login/password", {"contact": "pw@example.com", "password": "nope nope"},
                        "/account/login")
    unknown = await _post(client, "/account/login/password", {"contact": "nobody@example.com",
                                                              "password": "nope nope"}, "/account/login")
    assert wrong.status_code == unknown.status_code == 401
    assert "账号或密码错误" in wrong.text and "账号或密码错误" in unknown.text
    ok = await _post(client, "/account/login/password", {"contact": "PW@example.com", "next": "//evil.example/x",
                                                         "password": "correct horse battery"}, "/account/login")
    assert ok.status_code == 303 and ok.headers["location"] == "/account"  # never to another site
    assert "pw@example.com" in (await client.get("/account", headers=HTML)).text
