"""WeCom self-built app: URL check (decrypt echostr) and encrypted callbacks."""
from __future__ import annotations

from bot.channels.common import Refusal, check_replay, check_timestamp, parse_xml, replay_check, text_reply_xml
from bot.channels.crypto import ChannelCrypto
from bot.channels.mp import Inbound
from bot.channels.normalize import inbound_message
from ground.config import ChannelSettings


class WeComChannel:
    name = "wecom"

    def __init__(self, settings: ChannelSettings, window_s: int) -> None:
        self.settings = settings
        self.window_s = window_s
        self.crypto = ChannelCrypto(settings.token, settings.aes_key, settings.app_id, enterprise=True)

    def verify_url(self, args, check_time: bool = True) -> str:
        if check_time:
            check_timestamp(args.get("timestamp"), self.window_s)
        echostr = args.get("echostr")
        if not echostr:
            raise Refusal(400, "missing_field", "echostr")
        self.crypto.verify(args.get("msg_signature"), args.get("timestamp", ""), args.get("nonce", ""), echostr)
        return self.crypto.decrypt(echostr)

    def open(self, args, body: bytes, check_time: bool = True, defer_replay: bool = False) -> Inbound:
        """`defer_replay`: the replay check is left to the caller (`Inbound.replay`, see mp.py)."""
        if check_time:
            check_timestamp(args.get("timestamp"), self.window_s)
        fields = self.crypto.open_envelope(args, parse_xml(body))
        ts, nonce = args.get("timestamp", ""), args.get("nonce", "")
        replay = None
        if check_time and defer_replay:
            replay = replay_check(self.name, ts, nonce, body, self.window_s)
        elif check_time:
            check_replay(self.name, ts, nonce, body, self.window_s)
        return Inbound(inbound_message(fields, "wecom"), True, nonce, ts, replay)

    def render_reply(self, inbound: Inbound, text: str) -> str:
        xml = text_reply_xml(inbound.message.sender, inbound.message.to or self.settings.app_id, text)
        return self.crypto.encrypt_reply(xml, inbound.nonce)
