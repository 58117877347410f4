from bot.channels.crypto import ChannelCrypto
from bot.channels.common import parse_xml
from tests.conftest import WECOM_VECTOR

CORP, TOKEN, KEY = "wx5823bf96d3bd56c7", "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def test_wecom_url_vector_decrypts():
    c = ChannelCrypto(TOKEN, KEY, CORP, enterprise=True)
    echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    c.verify("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", echostr)
    assert c.decrypt(echostr) == "1616140317555161061"


def test_wecom_message_vector_decrypts():
    c = ChannelCrypto(TOKEN, KEY, CORP, enterprise=True)
    enc = parse_xml(WECOM_VECTOR.read_bytes())["Encrypt"]
    c.verify("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", enc)
    inner = parse_xml(c.decrypt(enc))
    assert inner["Content"] == "hello" and inner["MsgId"] == "4561255354251345929" and inner["AgentID"] == "218"


def test_demo_loads_and_routes(demo):
    from sqlalchemy import func, select

    from handlers.router import route
    from store.db import session_scope
    from store.models import Owner

    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Owner)) == 12
    assert route("你好").intent == "smalltalk"
