"""FinanceSdkSource without WeCom's native library: a stand-in `pyweworkfinance`
module (same calls as the PyPI wrapper) and a real RSA key pair, so the
decryption path and the record mapping are exercised; the project itself
never imports the wrapper unless GUANJIA_ARCHIVE=sdk."""
from __future__ import annotations

import base64
import json
import sys
import types
from types import SimpleNamespace

import pytest


@pytest.fixture
def keypair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return key.public_key(), pem


def test_sdk_source_decrypts_and_maps(keypair, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric import padding

    from handlers.groups.archive import FinanceSdkSource, to_message

    public, pem = keypair
    plain = {"msgid": "m-1", "action": "send", "from": "wm_li", "roomid": "wr_vip_01", "msgtime": 1789000000000,
             "msgtype": "text", "text": {"content": "游泳池几点开放"}}
    random_key = "k" * 16
    enc_key = base64.b64encode(public.encrypt(random_key.encode(), padding.PKCS1v15())).decode()

    class WeWorkFinance:  # the wrapper's surface: get_chat_data + decrypt_data
        def __init__(self, corpid, secret, default_timeout):
            self.calls = []

        def get_chat_data(self, seq, limit, timeout):
            self.calls.append(seq)
            item = SimpleNamespace(seq=7, msgid="m-1", publickey_ver=2, encrypt_random_key=enc_key,
                                   encrypt_chat_msg="opaque")
            return SimpleNamespace(errcode=0, chatdata=[item] if seq < 7 else [])

        def decrypt_data(self, key, msg):
            assert key == random_key and msg == "opaque"
            return json.dumps(plain)

    monkeypatch.setitem(sys.modules, "pyweworkfinance", types.SimpleNamespace(WeWorkFinance=WeWorkFinance))
    src = FinanceSdkSource("corp", "secret", {2: pem})
    [rec] = src.fetch(0, 100)
    assert (rec.seq, rec.msgid, rec.sender, rec.roomid, rec.content) == (7, "m-1", "wm_li", "wr_vip_01", "游泳池几点开放")
    assert src.fetch(7, 100) == []
    msg = to_message(rec, {"wr_vip_01": "vip"})
    assert (msg.channel, msg.chat, msg.group_id, msg.msg_id) == ("archive", "vip", "wr_vip_01", "m-1")
    with pytest.raises(RuntimeError, match="publickey_ver"):
        FinanceSdkSource("corp", "secret", {1: pem}).fetch(0, 100)


def test_archive_off_by_default_and_sdk_needs_settings(monkeypatch):
    from handlers.groups import archive

    archive.set_source(None)
    monkeypatch.delenv("GUANJIA_ARCHIVE", raising=False)
    try:
        assert archive.get_source() is None
        assert archive.poll_archive() == 0
        archive.set_source(None)
        monkeypatch.setenv("GUANJIA_ARCHIVE", "sdk")
        with pytest.raises(RuntimeError, match="WECOM_ARCHIVE_SECRET"):
            archive.get_source()
    finally:
        archive.set_source(None)


def test_cli_check_masks():
    from click.testing import CliRunner

    from handlers.groups.cli import groups

    res = CliRunner().invoke(groups, ["check", "王姐电话 138 1234 5678"])
    out = json.loads(res.output)
    assert out["violation"] == "privacy" and "1234" not in out["masked"] and out["masked"].endswith("5678")
