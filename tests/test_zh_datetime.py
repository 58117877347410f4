"""Chinese date/time understanding with a fixed now: Tuesday 2026-09-15 09:00 Shanghai."""
from datetime import datetime

import pytest

from ground.clock import CST
from handlers.zh_datetime import cn_number, parse_when

NOW = datetime(2026, 9, 15, 9, 0, tzinfo=CST)


def dt(m, d, h=0, mi=0, y=2026):
    return datetime(y, m, d, h, mi, tzinfo=CST)


# (phrase, expected start, expected exclusive end or None to skip, has_time)
CASES = [
    ("明天", dt(9, 16), dt(9, 17), False),
    ("后天", dt(9, 17), dt(9, 18), False),
    ("大后天", dt(9, 18), dt(9, 19), False),
    ("今天", dt(9, 15), dt(9, 16), False),
    ("今晚", dt(9, 15, 18), dt(9, 15, 22), False),
    ("明早", dt(9, 16, 6), dt(9, 16, 9), False),
    ("明晚八点", dt(9, 16, 20), None, True),
    ("明天下午三点", dt(9, 16, 15), dt(9, 16, 16), True),
    ("明天上午十点", dt(9, 16, 10), None, True),
    ("明天三点", dt(9, 16, 15), None, True),
    ("明天15:30", dt(9, 16, 15, 30), None, True),
    ("明天下午3点15分", dt(9, 16, 15, 15), None, True),
    ("后天上午九点一刻", dt(9, 17, 9, 15), None, True),
    ("后天晚上七点三刻", dt(9, 17, 19, 45), None, True),
    ("十点半", dt(9, 15, 10, 30), None, True),
    ("八点", dt(9, 16, 8), None, True),  # already past today -> tomorrow
    ("中午十二点", dt(9, 15, 12), None, True),
    ("中午一点", dt(9, 15, 13), None, True),
    ("下午", dt(9, 15, 13), dt(9, 15, 18), False),
    ("周六", dt(9, 19), dt(9, 20), False),
    ("星期五", dt(9, 18), None, False),
    ("礼拜天", dt(9, 20), None, False),
    ("周一", dt(9, 21), None, False),  # passed this week -> next
    ("这周六", dt(9, 19), None, False),
    ("下周六上午", dt(9, 26, 8), dt(9, 26, 12), False),
    ("下周三下午两点", dt(9, 23, 14), None, True),
    ("下下周一", dt(9, 28), None, False),
    ("周末", dt(9, 19), dt(9, 21), False),
    ("下周末", dt(9, 26), dt(9, 28), False),
    ("下周", dt(9, 21), dt(9, 28), False),
    ("下个月15号", dt(10, 15), dt(10, 16), False),
    ("下月三号上午", dt(10, 3, 8), dt(10, 3, 12), False),
    ("下个月初", dt(10, 1), None, False),
    ("月底", None, None, False),  # not understood alone: needs 这个月/下个月
    ("这个月底", dt(9, 30), None, False),
    ("20号", dt(9, 20), None, False),
    ("10号", dt(10, 10), None, False),  # passed this month -> next month
    ("10月3日", dt(10, 3), None, False),
    ("十月三号下午四点", dt(10, 3, 16), None, True),
    ("9月1日", dt(9, 1, y=2027), None, False),  # passed this year -> next year
    ("2026年12月24日晚上", dt(12, 24, 18), dt(12, 24, 22), False),
    ("国庆期间", dt(10, 1), dt(10, 8), False),
    ("国庆节", dt(10, 1), dt(10, 8), False),
    ("中秋", dt(9, 25), dt(9, 28), False),
    ("十一期间", dt(10, 1), dt(10, 8), False),
    ("三天后", dt(9, 18), None, False),
    ("两周后", dt(9, 29), None, False),
    ("两个小时后", dt(9, 15, 11), None, True),
    ("半小时后", dt(9, 15, 9, 30), None, True),
    ("傍晚", dt(9, 15, 17), dt(9, 15, 19), False),
    ("今天晚上九点", dt(9, 15, 21), None, True),
    ("我想约下周六上午做安全检查", dt(9, 26, 8), None, False),
    ("帮我预约明天下午三点的家政", dt(9, 16, 15), None, True),
    ("十一点", dt(9, 15, 11), None, True),
    ("下礼拜三", dt(9, 23), None, False),
    ("周六晚上7点", dt(9, 19, 19), None, True),
    ("后天中午", dt(9, 17, 12), dt(9, 17, 14), False),  # 中午 is noon, not 11:00
    ("下个月底", dt(10, 31), None, False),
    ("这周日", dt(9, 20), None, False),
    ("今天下午五点半", dt(9, 15, 17, 30), None, True),
    ("明天早上8点", dt(9, 16, 8), None, True),
    ("下星期一上午十点", dt(9, 21, 10), None, True),
    ("凌晨两点", dt(9, 16, 2), None, True),
    ("二十号上午九点", dt(9, 20, 9), None, True),
    ("9/20", dt(9, 20), None, False),
    ("10月1号到7号", dt(10, 1), dt(10, 8), False),
    ("下周一到周三", dt(9, 21), dt(9, 24), False),
    ("明天到后天", dt(9, 16), dt(9, 18), False),
    ("一个月后", dt(10, 15), None, False),
    ("改到明天", dt(9, 16), dt(9, 17), False),
]


@pytest.mark.parametrize("text,start,end,has_time", CASES, ids=[c[0] for c in CASES])
def test_phrase(text, start, end, has_time):
    w = parse_when(text, NOW)
    if start is None:
        assert w is None
        return
    assert w is not None, text
    assert w.start == start, (text, w)
    if end is not None:
        assert w.end == end, (text, w)
    assert w.has_time == has_time


def test_enough_expressions():
    assert len(CASES) >= 40


def test_no_date_in_text():
    assert parse_when("我要预约家政", NOW) is None
    assert parse_when("", NOW) is None


def test_holidays_beyond_library_data():
    # chinesecalendar 1.11 ends in 2026: lunar holidays of 2027 are not guessed;
    # fixed-date ones fall back to their usual span.
    assert parse_when("春节", NOW) is None and parse_when("端午节", NOW) is None
    later = datetime(2026, 10, 20, 9, tzinfo=CST)
    w = parse_when("国庆期间", later)
    assert (w.start, w.end) == (dt(10, 1, y=2027), dt(10, 8, y=2027))
    assert parse_when("元旦", NOW).start == dt(1, 1, y=2027)
    w = parse_when("五一期间", NOW)
    assert (w.start, w.end) == (dt(5, 1, y=2027), dt(5, 6, y=2027))


def test_weekend_on_sunday_is_today():
    w = parse_when("周末", datetime(2026, 9, 20, 9, tzinfo=CST))
    assert w.start == dt(9, 20)


def test_cn_numbers():
    assert [cn_number(x) for x in ("十五", "二十三", "两", "十", "三十一", "08")] == [15, 23, 2, 10, 31, 8]


def test_describe_and_days():
    w = parse_when("国庆期间", NOW)
    assert len(w.days()) == 7 and w.is_range and w.describe() == "10月1日至10月7日"
    assert parse_when("明天下午三点", NOW).describe() == "9月16日(周三) 15:00"
