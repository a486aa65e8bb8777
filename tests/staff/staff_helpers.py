"""Create staff members through the real service and log them in through the real API."""

from __future__ import annotations

from quanyi.staff import service as staff_service

PASSWORD = "correct horse battery"


async def make_staff(shop, username: str, *permissions: str, password: str = PASSWORD) -> None:
    async with shop.ctx.db.transaction() as session:
        await staff_service.create_staff(session=session, username=username, password=password,
                                         permissions=permissions)


async def login(shop, username: str, password: str = PASSWORD, **headers: str) -> dict[str, str]:
    response = await shop.client.post("/api/staff/login", json={"username": username, "password": password},
                                      headers=headers)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def staff_headers(shop, username: str, *permissions: str) -> dict[str, str]:
    await make_staff(shop, username, *permissions)
    return await login(shop, username)
