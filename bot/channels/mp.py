"""Official Account: URL check and the three message modes (plain, compatible, safe)."""
from __future__ import annotations

from dataclasses import dataclass

from bot.channels.common import (Refusal, ReplayCheck, check_replay, check_signature, check_timestamp, parse_xml,
                                 replay_check, text_reply_xml)
from bot.channels.crypto import ChannelCrypto
from bot.channels.normalize import inbound_message
from ground.config import ChannelSettings
from handlers.message import Message


@dataclass
class Inbound:
    message: Message
    encrypted: bool
    nonce: str
    timestamp: str
    # The replay check of this request when the caller deferred it (`open(defer_replay=True)`,
    # the webhook): bot/inbox.py::accept runs it in the dedup's round trip. None: checked
    # already, or the timestamp window is off.
    replay: ReplayCheck | None = None


class MpChannel:
    name = "mp"

    def __init__(self, settings: ChannelSettings, window_s: int) -> None:
        self.settings = settings
        self.window_s = window_s
        self.crypto = (ChannelCrypto(settings.token, settings.aes_key, settings.app_id, enterprise=False)
                       if settings.aes_key else None)

    def _check_url_signature(self, args) -> None:
        check_timestamp(args.get("timestamp"), self.window_s)
        check_signature(args.get("signature"), self.settings.token, args.get("timestamp", ""), args.get("nonce", ""))

    def verify_url(self, args) -> str:
        self._check_url_signature(args)
        echostr = args.get("echostr")
        if not echostr:
            raise Refusal(400, "missing_field", "echostr")
        return echostr

    def open(self, args, body: bytes, defer_replay: bool = False) -> Inbound:
        # The URL signature is sent in every mode; check it first, it costs nothing.
        self._check_url_signature(args)
        fields = parse_xml(body)
        encrypted = args.get("encrypt_type") == "aes"
        if self.crypto is not None and not encrypted:
            # Safe/compatible mode is configured: a plain body is covered by no signature
            # (the URL one does not include it), so it could be anyone's words.
            raise Refusal(403, "plaintext_refused", "WECHAT_AES_KEY is set: only encrypted messages")
        if encrypted:
            if self.crypto is None:
                raise Refusal(400, "encryption_not_configured", "WECHAT_AES_KEY is not set")
            fields = self.crypto.open_envelope(args, fields)
        ts, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if not defer_replay:
            check_replay(self.name, ts, nonce, body, self.window_s)
        return Inbound(inbound_message(fields, "mp"), encrypted, nonce, ts,
                       replay_check(self.name, ts, nonce, body, self.window_s) if defer_replay else None)

    def render_reply(self, inbound: Inbound, text: str) -> str:
        xml = text_reply_xml(inbound.message.sender, inbound.message.to or "", text)
        if inbound.encrypted:
            return self.crypto.encrypt_reply(xml, inbound.nonce)
        return xml
