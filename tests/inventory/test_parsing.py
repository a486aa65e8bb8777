"""Import-file parsing: every accepted shape, every rejected line with its number."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanyi.inventory.parsing import MIN_CODE_LENGTH, SEPARATOR, decode_upload, parse_card_keys, split_secret
from quanyi.shoptime import shop_zone

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SHOP = shop_zone()  # Asia/Shanghai, the default


def test_one_code_per_line_with_blanks_and_comments():
    parsed = parse_card_keys("# supplier batch 7\nAAAA-BBBB\n\n  CCCC-DDDD  \n", now=NOW, zone=SHOP)
    assert [k.secret for k in parsed.keys] == ["AAAA-BBBB", "CCCC-DDDD"]
    assert [k.line_no for k in parsed.keys] == [2, 4]
    assert parsed.invalid == []


def test_card_number_and_password_in_every_separator_style():
    text = "CARD1,PW1\nCARD2\tPW2\nCARD3----PW3\nCARD4 PW4\n\"CARD5\", \"PW5\"\n"
    parsed = parse_card_keys(text, now=NOW, zone=SHOP)
    assert [split_secret(k.secret) for k in parsed.keys] == [(f"CARD{i}", f"PW{i}") for i in range(1, 6)]


def test_expiry_dates_mean_end_of_day_shop_time():
    parsed = parse_card_keys("CODE01,2027-06-30\nCARD2,PW2,2027/1/5\n", now=NOW, zone=SHOP)
    assert parsed.keys[0].expires_at == dt.datetime(2027, 6, 30, 16, 0, tzinfo=dt.UTC)
    assert split_secret(parsed.keys[1].secret) == ("CARD2", "PW2")
    assert parsed.keys[1].expires_at == dt.datetime(2027, 1, 5, 16, 0, tzinfo=dt.UTC)


def test_header_line_is_skipped_in_english_and_chinese():
    assert len(parse_card_keys("card_no,password,expires\nCARD01,PW01,2027-01-01", now=NOW, zone=SHOP).keys) == 1
    assert len(parse_card_keys("卡号,密码\nCARD01,PW01", now=NOW, zone=SHOP).keys) == 1
    # Only the first content line can be a header.
    assert parse_card_keys("CARD01,PW01\npassword", now=NOW, zone=SHOP).keys[1].secret == "password"


def test_full_width_characters_are_normalized():
    parsed = parse_card_keys("ＡＢＣＤ－１２３４，ｐａｓｓ\u3000\n", now=NOW, zone=SHOP)
    assert split_secret(parsed.keys[0].secret) == ("ABCD-1234", "pass")


def test_invalid_lines_are_reported_with_numbers_and_reasons():
    text = "\n".join([
        "GOOD-1",
        "A,B,C,D",  # 2: too many fields
        "CARD,PASS,2020-01-01",  # 3: expired
        "CARD,PASS,2027-02-30",  # 4: impossible date
        "CARD,PASS,tomorrow",  # 5: not a date
        "X" * 300,  # 6: too long
        ",PASS",  # 7: empty card number
        "BAD\x07CODE",  # 8: control character
        "GOOD-2",
    ])
    parsed = parse_card_keys(text, now=NOW, zone=SHOP)
    assert [k.secret for k in parsed.keys] == ["GOOD-1", "GOOD-2"]
    reasons = dict(parsed.invalid)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert "4 fields" in reasons[2]
    assert "already expired" in reasons[3]
    assert "not a real date" in reasons[4]
    assert "not a date" in reasons[5]
    assert "longer than" in reasons[6]
    assert "empty" in reasons[7]
    assert "control" in reasons[8]


def test_decode_accepts_utf8_bom_and_gb18030():
    assert decode_upload("\ufeff卡号,密码\nA,B".encode()) == "卡号,密码\nA,B"
    assert decode_upload("卡密ＡＢ".encode("gb18030")) == "卡密ＡＢ"


# "----" is a field separator by definition, so a code never contains it.
_code = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.", min_size=6, max_size=40).filter(
    lambda s: "----" not in s and any(c.isalnum() for c in s))


@given(st.lists(st.one_of(_code, st.tuples(_code, _code)), min_size=1, max_size=50))
def test_any_well_formed_file_round_trips(entries):
    lines = [e if isinstance(e, str) else f"{e[0]},{e[1]}" for e in entries]
    parsed = parse_card_keys("\n".join(lines), now=NOW, zone=SHOP)
    expected = [e if isinstance(e, str) else e[0] + SEPARATOR + e[1] for e in entries]
    # A lone first line made only of header words would be skipped; our alphabet cannot spell one.
    assert [k.secret for k in parsed.keys] == expected
    assert parsed.invalid == []


INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u00ad", "\u2060", "\ufeff", "\u200e", "\u202e", "\U000e0041"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_invisible_format_characters_are_removed(char):
    parsed = parse_card_keys(f"AB{char}CD-1234{char}\n{char}CARD-0001,PA{char}SS99", now=NOW, zone=SHOP)
    assert [k.secret for k in parsed.keys] == ["ABCD-1234", "CARD-0001" + SEPARATOR + "PASS99"]
    assert parsed.invalid == []


@pytest.mark.parametrize("char", ["\u3164", "\u115f", "\ufe0f", "\u034f", "\ue000", "\U000e01ef"])
def test_invisible_characters_that_are_not_format_characters_are_refused(char):
    parsed = parse_card_keys(f"ABCD{char}1234\nGOOD-0001", now=NOW, zone=SHOP)
    assert [k.secret for k in parsed.keys] == ["GOOD-0001"]
    assert parsed.invalid == [(1, "code contains an invisible or unassigned character")]


def test_codes_shorter_than_the_minimum_are_refused():
    assert MIN_CODE_LENGTH == 6
    parsed = parse_card_keys("ABCDE\nABCDEF\nAB\u200bCDE\nCAR,PAS\nCA,PAS", now=NOW, zone=SHOP)
    assert [split_secret(k.secret) for k in parsed.keys] == [(None, "ABCDEF"), ("CAR", "PAS")]
    assert parsed.invalid == [(1, "shorter than 6 characters"), (3, "shorter than 6 characters"),
                              (5, "shorter than 6 characters")]
