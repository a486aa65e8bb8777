"""Card-key import in a real browser (chromium through Playwright) against a real uvicorn server: an operator
uploads a 20,000-line file, watches the live progress bar reach 100 % and reads the report (issue 13).

Screenshots land in test-artifacts/screenshots/console-import-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from live_shop import LiveShop, serve_demo_shop
from quanyi.staff import service as staff_service
from web.test_browser import DESKTOP, TIMEOUT_MS, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
__all__ = ["browser", "shots"]
LINES = 20_000
_LIVE = """() => { const box = document.querySelector('[data-testid=import-live]');
                   return box ? [box.dataset.percent || null, box.dataset.status || null] : [null, null]; }"""


@pytest.fixture(scope="module")
def import_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    folder = tmp_path_factory.mktemp("import-browser")

    async def setup(ctx: Any) -> None:
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="ivy", password=PASSWORD,
                                             roles=["operator"])

    # Small chunks: the 20,000 lines take 40 chunks, so the bar has steps to show.
    with serve_demo_shop(sqlite_template, folder, setup=setup, import_spool_dir=str(folder / "spool"),
                         import_chunk_lines=500) as live:
        yield live


def test_operator_uploads_keys_and_watches_the_progress_reach_100_percent(
        browser: Any, import_shop: LiveShop, shots: Path, tmp_path: Path) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    keys = tmp_path / "invoice-0042.csv"
    rows = ["card_no,password"] + [f"IVY{n:08d},PW{n:08d}X" for n in range(LINES - 3)] + ["IVY00000007,PW00000007X",
                                                                                         "short", "a,b,c,d"]
    keys.write_text("\n".join(rows) + "\n", encoding="utf-8")
    errors: list[str] = []
    context = _new_context(browser, import_shop, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    _watch(page, errors)

    page.goto("/console/login")
    page.locator("#username").fill("ivy")
    page.locator("#password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))
    page.goto("/console/keys")
    page.get_by_role("link", name="STAR-VIP-1M").first.click()
    page.get_by_test_id("import-keys").click()
    expect(page.locator("h1")).to_contain_text("导入卡密")
    _shoot(page, shots, "console-import-01-form")

    # A file that is not text is refused on the page, and nothing is queued.
    junk = tmp_path / "photo.csv"
    junk.write_bytes(bytes(range(256)) * 40)
    page.get_by_test_id("import-file").set_input_files(str(junk))
    page.get_by_test_id("import-submit").click()
    expect(page.locator("[data-import-error]")).to_contain_text("UTF-8")
    expect(page.locator(".c-import-live .c-progress")).to_be_hidden()  # no bar for an upload that was refused
    _shoot(page, shots, "console-import-02-refused")

    page.get_by_test_id("import-file").set_input_files(str(keys))
    page.locator("#import-source").fill("invoice 0042")
    page.get_by_test_id("import-submit").click()
    live = page.get_by_test_id("import-live")
    expect(live).to_be_visible()
    seen: list[int] = []
    deadline = time.monotonic() + 120
    shot_midway = False
    while "/console/keys/imports/" not in page.url:
        assert time.monotonic() < deadline, f"the import did not finish; percents seen: {seen}"
        try:
            value, status = page.evaluate(_LIVE)
        except PlaywrightError:  # the page is navigating to the job's page
            continue
        if status is None:  # still uploading (the bar shows the upload first), no job yet
            page.wait_for_timeout(40)
            continue
        if value is not None and (not seen or int(value) != seen[-1]):
            seen.append(int(value))
            if 0 < seen[-1] < 100 and not shot_midway and status == "running":
                _shoot(page, shots, "console-import-03-running")
                shot_midway = True
        page.wait_for_timeout(40)
    # The job's page: the bar at 100 % and the report.
    box = page.get_by_test_id("import-progress")
    expect(box).to_have_attribute("data-percent", "100")
    expect(box.locator("[data-progress-label]")).to_have_text("100 %")
    assert page.evaluate("document.querySelector('.c-progress > span').style.width") == "100%"
    drawn = page.evaluate("""() => document.querySelector('.c-progress > span').getBoundingClientRect().width /
                                   document.querySelector('.c-progress').getBoundingClientRect().width""")
    assert drawn > 0.99, drawn  # the bar is full on screen, not only in its style
    expect(page.get_by_test_id("import-status")).to_have_text("已完成")
    expect(page.get_by_test_id("import-added")).to_have_text(str(LINES - 3))
    expect(page.get_by_test_id("import-duplicates")).to_have_text("1")
    expect(page.get_by_test_id("import-invalid")).to_have_text("2")
    expect(page.get_by_test_id("import-invalid-lines")).to_contain_text(str(LINES))
    expect(page.get_by_test_id("import-invalid-lines")).to_contain_text("少于 6 个字符")  # said in Chinese
    expect(page.get_by_test_id("import-invalid-lines")).to_contain_text("有 4 列")
    said_duplicate = re.compile("与本文件(第 9 行|中前面的一行)重复")
    expect(page.get_by_test_id("import-duplicates-lines")).to_contain_text(said_duplicate)
    _shoot(page, shots, "console-import-04-done")
    assert seen == sorted(seen), seen  # the job's bar only moves forward

    # The batch it made, and the same page in English.
    page.get_by_test_id("batch-link").click()
    expect(page.locator("h1")).to_contain_text("invoice 0042")
    page.go_back()
    page.goto(page.url + "?lang=en")
    expect(page.get_by_test_id("import-status")).to_have_text("Done")
    _shoot(page, shots, "console-import-05-done-en")
    # The refused upload's answer (422) is the one failed request.
    assert [e for e in errors if not re.match(r"422 .*/console/keys/skus/\d+/imports$", e)] == [], errors
    context.close()
