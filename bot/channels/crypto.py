"""AES message crypto for both platforms, on wechatpy's PrpCrypto.

Signatures are checked by us (constant time) before anything is decrypted.
"""
from __future__ import annotations

import base64
import time

from wechatpy.crypto import PrpCrypto as MpPrpCrypto
from wechatpy.enterprise.crypto import PrpCrypto as WeComPrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidAppIdException

from bot.channels.common import Refusal, check_signature, parse_xml, require, sha1_signature


class ChannelCrypto:
    def __init__(self, token: str, aes_key: str, app_id: str, enterprise: bool) -> None:
        self.token = token
        self.app_id = app_id
        self.key = base64.b64decode(aes_key + "=")
        self._prp = WeComPrpCrypto if enterprise else MpPrpCrypto

    def verify(self, signature: str | None, timestamp: str, nonce: str, encrypted: str) -> None:
        check_signature(signature, self.token, timestamp, nonce, encrypted)

    def open_envelope(self, args, envelope: dict[str, str]) -> dict[str, str]:
        """The fields inside an encrypted body (`<Encrypt>`): its msg_signature checked over
        the query's timestamp and nonce, then decrypted."""
        require(envelope, "Encrypt")
        self.verify(args.get("msg_signature"), args.get("timestamp", ""), args.get("nonce", ""), envelope["Encrypt"])
        return parse_xml(self.decrypt(envelope["Encrypt"]))

    def decrypt(self, encrypted: str) -> str:
        try:
            return self._prp(self.key).decrypt(encrypted, self.app_id)
        except (InvalidAppIdException, InvalidCorpIdException):
            raise Refusal(403, "wrong_app_id") from None
        except Exception as exc:  # bad base64, bad padding, wrong key
            raise Refusal(400, "undecryptable", type(exc).__name__) from None

    def encrypt_reply(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        timestamp = timestamp or str(int(time.time()))
        encrypted = self._prp(self.key).encrypt(xml, self.app_id)
        encrypted = encrypted.decode() if isinstance(encrypted, bytes) else encrypted
        signature = sha1_signature(self.token, timestamp, nonce, encrypted)
        return (f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
                f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")
