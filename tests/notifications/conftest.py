"""Local receivers for every notification channel, and settings that point the shop at them.

The receivers are real servers on loopback ports (aiosmtpd for SMTP; the SMS and robot test peers under
uvicorn), started once per session and emptied before each test.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from helpers import Shop, make_settings
from quanyi.config import Settings
from quanyi.notifications.rendering import sms_template_text
from quanyi.notifications.worker import OutboxWorker
from quanyi.testpeers.robots import RobotReceiver
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.sms import SmsSimulator
from quanyi.testpeers.smtp import SmtpSink

SMS_TEMPLATE_ZH, SMS_TEMPLATE_EN = "SMS_900001", "SMS_900002"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    with SmtpSink().running() as sink:
        yield sink


@pytest.fixture(scope="session")
def robots_server() -> Iterator[tuple[RobotReceiver, str]]:
    receiver = RobotReceiver(wecom_key=secrets.token_hex(8), dingtalk_token=secrets.token_hex(8),
                             dingtalk_secret="SEC" + secrets.token_hex(16))
    with serve_in_thread(receiver.app) as url:
        yield receiver, url


@pytest.fixture(scope="session")
def sms_server() -> Iterator[tuple[SmsSimulator, str]]:
    simulator = SmsSimulator(
        access_key_id="LTAI" + secrets.token_hex(6), access_key_secret=secrets.token_urlsafe(20), sign_name="权益商城",
        templates={SMS_TEMPLATE_ZH: sms_template_text("order_delivered", "zh-CN"),
                   SMS_TEMPLATE_EN: sms_template_text("order_delivered", "en")})
    with serve_in_thread(simulator.app) as url:
        yield simulator, url + "/"


@pytest.fixture
def smtp(smtp_server: SmtpSink) -> SmtpSink:
    smtp_server.reset()
    return smtp_server


@pytest.fixture
def robots(robots_server: tuple[RobotReceiver, str]) -> RobotReceiver:
    robots_server[0].reset()
    return robots_server[0]


@pytest.fixture
def sms(sms_server: tuple[SmsSimulator, str]) -> SmsSimulator:
    sms_server[0].reset()
    return sms_server[0]


def notification_settings(smtp: SmtpSink, robots_server: tuple[RobotReceiver, str],
                          sms_server: tuple[SmsSimulator, str]) -> dict[str, object]:
    receiver, robots_url = robots_server
    simulator, sms_url = sms_server
    return {
        "smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_security": "none",
        "smtp_from": "权益商城 <shop@quanyi.example>",
        "sms_api_url": sms_url, "sms_access_key_id": simulator.access_key_id,
        "sms_access_key_secret": simulator.access_key_secret, "sms_sign_name": simulator.sign_name,
        "sms_template_order_delivered": SMS_TEMPLATE_ZH, "sms_template_order_delivered_en": SMS_TEMPLATE_EN,
        "wecom_webhook_url": f"{robots_url}/cgi-bin/webhook/send?key={receiver.wecom_key}",
        "dingtalk_webhook_url": f"{robots_url}/robot/send?access_token={receiver.dingtalk_token}",
        "dingtalk_secret": receiver.dingtalk_secret,
        "notification_backoff_seconds": 0.0,  # retries are due at once; backoff itself is tested separately
    }


@pytest.fixture
def settings(database_url: str, smtp: SmtpSink, robots_server, sms_server) -> Settings:
    return make_settings(database_url, **notification_settings(smtp, robots_server, sms_server))


@pytest.fixture
def worker(shop: Shop) -> OutboxWorker:
    return OutboxWorker(shop.ctx, owner="test-worker")
