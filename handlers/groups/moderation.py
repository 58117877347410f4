"""What breaks the group rules (RULES.md, VIP group), and masking personal data.

Pure functions, no database: `check(text, chat, role)` is installed as the
router's moderation checker, so `guanjia route` shows the same verdict the
worker acts on. The lexicons are data (data/moderation.yaml); this module is
the machinery that survives the usual evasions:

- full-width letters/digits (NFKC), traditional characters (OpenCC t2s),
- spaces, dots and emoji between characters (matching on a compact form),
- homophones and spellings (薇信, V信, vx...) folded by the `variants` table,
- digits written as Chinese numerals (一三八..., 幺, 洞) or split by symbols,
  for phone, ID and bank-card numbers.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date


from handlers.groups.ladder import first_action
from handlers.groups.mod_lexicon import AROUND_CHARS, Lexicon, compact, lexicon
from handlers.groups.mod_model import cache_path, model, opinion, save_cache
from handlers.groups.mod_normalize import fold as _fold
from handlers.groups.mod_privacy import (SPREAD_PHONE, full_name_in, names_someone, privacy_combination,
                                        tells_about_someone)

# --- numbers: phones, ID cards, bank cards -------------------------------------------

DIGIT_MAP = {**{str(i): str(i) for i in range(10)},
             "零": "0", "〇": "0", "○": "0", "洞": "0", "一": "1", "壹": "1", "幺": "1", "二": "2", "贰": "2",
             "两": "2", "三": "3", "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6",
             "七": "7", "柒": "7", "拐": "7", "八": "8", "捌": "8", "九": "9", "玖": "9", "勾": "9"}
# Characters people put between digits to dodge filters; they keep a run going.
SEPARATORS = set(" \t\r\n-_.,，、·•‧∙・⋅—–‐*/|~+()（）[]【】:：;；'\"`^=#")
PHONE = re.compile(r"^1[3-9]\d{9}$")
ID_LABELLED = re.compile(r"身份证(?:号码|号)?\s*[:：是为]?\s*\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dxX](?!\d)")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


@dataclass
class NumberHit:
    kind: str  # phone / id / card
    positions: list[int]  # indexes in the NFKC text, one per digit


def _runs(text: str) -> list[list[list[tuple[str, int]]]]:
    """Digit runs as lists of groups; a group is split off at a separator."""
    runs, groups, group = [], [], []
    pending_sep = False
    for i, ch in enumerate(text):
        d = DIGIT_MAP.get(ch)
        if d is None and ch in "xX" and group:
            d = "X"  # only meaningful as an ID's last character; checked later
        if d is not None:
            if pending_sep and group:
                groups.append(group)
                group = []
            pending_sep = False
            group.append((d, i))
        elif (ch in SEPARATORS or unicodedata.category(ch) in ("So", "Sk", "Sm", "Mn", "Me", "Cf")) and (group or groups):
            # Mn/Me/Cf: the variation selector and keycap of 1️⃣5️⃣9️⃣ keep a number going.
            pending_sep = True
        else:
            if group:
                groups.append(group)
            if groups:
                runs.append(groups)
            groups, group, pending_sep = [], [], False
    if group:
        groups.append(group)
    if groups:
        runs.append(groups)
    return runs


def valid_id(num: str) -> bool:
    if len(num) != 18 or not num[:17].isdigit():
        return False
    total = sum(int(n) * w for n, w in zip(num[:17], ID_WEIGHTS))
    if ID_CHECK[total % 11] != num[17].upper():
        return False
    try:  # a real birth date keeps random 18-digit strings from passing
        born = date(int(num[6:10]), int(num[10:12]), int(num[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2030


def luhn(num: str) -> bool:
    if not num.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(num)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _kind(num: str) -> str | None:
    if len(num) == 11 and PHONE.match(num):
        return "phone"
    if len(num) == 18 and valid_id(num):
        return "id"
    if 16 <= len(num) <= 19 and num[0] in "3456" and "X" not in num and luhn(num):
        return "card"
    return None


def _classify(digits: list[tuple[str, int]]) -> NumberHit | None:
    kind = _kind("".join(d for d, _ in digits))
    return NumberHit(kind, [p for _, p in digits]) if kind else None


def find_numbers(text: str) -> list[NumberHit]:
    """Phones, ID numbers and bank cards however they are spelt or split
    (an ID or card number right after 订单号/快递单号... is a reference, not one)."""
    text = _aligned(text or "")
    lex = lexicon()
    rooms = _room_digits(text)
    out = []
    for h in _find_numbers(text):
        before = _fold(text[max(0, h.positions[0] - 8):h.positions[0]])
        # A phone right after 快递 is the courier's; after 单号 / 工单号 it is a reference.
        labels = lex.reference_labels if h.kind == "phone" else lex.number_labels
        if any(w in before for w in labels):
            continue
        if 2 * sum(p in rooms for p in h.positions) > len(h.positions):
            continue  # mostly room numbers read on ("1. 3-502 2. 6-1101"): a sign-up list
        out.append(h)
    return out


def _own_request(comp: str, lex: Lexicon) -> bool:
    """The writer asks the property for something and gives their own details to be reached
    (moderation.yaml `own_details`: addressed to, a self word and a request word all present)."""
    own = lex.own_details
    return bool(own) and all(any(w in comp for w in own.get(k, ())) for k in ("addressed", "self", "request"))


def _room_digits(text: str) -> set[int]:
    """Positions of the digits that belong to room numbers (3-502, 6栋1101)."""
    return {i for m in ROOM_NUMBER.finditer(text) for i in range(m.start(), m.end())}


def _find_numbers(text: str) -> list[NumberHit]:
    hits: list[NumberHit] = []
    for groups in _runs(text):
        flat = [d for g in groups for d in g]
        found = _classify(flat)
        if found:
            hits.append(found)
            continue
        n = len(flat)
        # +86 / 086 / 0086 prefixes and one stray digit glued on either side; not a mobile
        # inside any other longer run (an EMS number 1191827364507 holds 19182736450).
        run = "".join(d for d, _ in flat)
        for a, b, prefix in ((2, n, "86"), (3, n, "086"), (4, n, "0086"), (1, n, ""), (0, n - 1, "")):
            if 0 <= a < b <= n and b - a == 11 and flat[a][0] == "1" and run.startswith(prefix):
                found = _classify(flat[a:b])
                if found:
                    hits.append(found)
                    break
        if found:
            continue
        # Several numbers in one run, split by separators: try each span of groups.
        # Lengths are added up first and a span is only built when its length
        # can be a phone, ID or card: "8-8-8-..." over 100 KB stays fast.
        used: set[int] = set()
        digits = "".join(d for d, _ in flat)
        offsets = [0]
        for g in groups:
            offsets.append(offsets[-1] + len(g))
        for i in range(len(groups)):
            if i in used:
                continue
            for j in range(i + 1, len(groups) + 1):
                total = offsets[j] - offsets[i]
                if total > 19:
                    break
                if total != 11 and total < 16:
                    continue
                kind = _kind(digits[offsets[i]:offsets[j]])
                if kind:
                    hits.append(NumberHit(kind, [p for _, p in flat[offsets[i]:offsets[j]]]))
                    used.update(range(i, j))
                    break
    return hits


# --- contact handles and links ---------------------------------------------------------

_CN_DIGITS = str.maketrans({k: v for k, v in DIGIT_MAP.items() if not k.isdigit()})
# An id after the label: letters first, digits only (QQ), or digits first with letters in it
# ("w x 5 5 8 8 t j" compacts to 微信5588tj).
HANDLE = re.compile(r"(微信号?|qq群?号?|q群号?|群号|vx号?|企鹅号?)(?:是|为|号|id)?([a-z][a-z0-9]{5,19}|(?=[0-9]{1,19}[a-z])[0-9][a-z0-9]{5,19}|\d{5,12})")
# The id first, then the label: "yxh9988 这个是我的绿泡泡", "334455667是我q".
HANDLE_BEFORE = re.compile(r"(?<![a-z0-9])((?=[a-z0-9]{0,19}[0-9])(?=[a-z0-9]{0,19}[a-z])[a-z][a-z0-9]{4,19}|[1-9][0-9]{5,10})(?![a-z0-9])(?:这个|这)?就?是?(?:我的?|本人的?)(?:微信号?|vx号?|qq号?|企鹅号?)")
# "V:zx8899", "q：334455667": a one-letter label needs the colon to count.
# "V:zx8899", "q：334455667", "薇❤:lin_8866": a one-letter (or one-character) label needs the colon.
SHORT_HANDLE = re.compile(r"(?<![a-z0-9])(?:[vq]|vx|wx|[微薇威溦卫])[^\w:：]{0,2}\s*[:：]\s*([a-z0-9][a-z0-9_.-]{4,19})")
# Without the colon, a symbol or space between the label and an id that mixes letters and
# digits, like a handle does ("v❤ fit_coach77", "vx  lin_8866"); "v 5g" or "q 2024" are too short.
SYMBOL_HANDLE = re.compile(r"(?<![a-z0-9])(?:v|vx|wx|[微薇威溦])[^\w:：]{1,3}((?=[a-z0-9_.-]{0,19}[0-9])(?=[a-z0-9_.-]{0,19}[a-z])[a-z0-9][a-z0-9_.-]{5,19})(?![a-z0-9])")
# An emoji standing for the app, then 号 or 信 and a colon or a space: "🛰️号:rose_home_2024",
# "🛰信：jia_0571", "🛰️信 carport_b2" (the id mixes letters and digits).
EMOJI_HANDLE = re.compile(r"(?:(?<=[^\w\s])|(?<=[^\w\s]\s))[号信](?:\s*[:：]\s*|\s+)((?=[a-z0-9_.-]{0,19}[0-9])(?=[a-z0-9_.-]{0,19}[a-z])[a-z0-9][a-z0-9_.-]{4,19})")
# Repeats are bounded so a 100 KB run of letters costs linear time (no rescans to its end).
EMAIL = re.compile(r"(?<![a-z0-9._%+-])[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,24}")
URL = re.compile(r"(https?://\S+|www\.\S+|#?小程序://\S+|(?<![a-z0-9.])t\.me/[a-z0-9_]{3,64}|\b[a-z0-9][a-z0-9-]{1,62}\.(?:com|cn|net|top|xyz|cc|vip|shop|io|me|org|link|info|site)(?:/\S*)?\b)")
# Links spelt out or with spaces between the letters ("h t t p : / /", "abc点com").
# A domain with a path, whatever its ending ("bit.ly/3xyz", "dwz.cn/ab3"): a link to click.
URL_PATH = re.compile(r"(?<![a-z0-9.])[a-z0-9][a-z0-9-]{1,62}\.[a-z]{2,6}/[a-z0-9]{1,64}")
# Dots in disguise between the parts of a domain: "bit·ly", "bit点ly", "abc[dot]com", "abc(.)cn".
# Also a plain dot with a space before it, a slash with spaces ("bit . ly / abc"); not a
# dot followed by a space only (the end of an English sentence) nor 。 ("thanks。me too").
_FAKE_DOT = re.compile(r"(?<=[a-z0-9])(?:\s{0,3}(?:[·•点]|\[dot\]|\(dot\)|\[\.\]|\(\.\))\s{0,3}|\s{1,3}\.\s{0,3})(?=[a-z])")
# "t dot me slash quickcash": the dot and the slash said in words.
_SPOKEN_DOT = re.compile(r"(?<=[a-z0-9])\s{1,3}dot\s{1,3}(?=[a-z])")
_SPOKEN_SLASH = re.compile(r"(?<=[a-z0-9])\s{1,3}slash\s{1,3}(?=[a-z0-9])")
_SPACED_SLASH = re.compile(r"(?<=[a-z0-9])\s{1,3}/\s{0,3}(?=[a-z0-9])|(?<=[a-z0-9])/\s{1,3}(?=[a-z0-9])")
URL_SPOKEN = re.compile(r"[a-z0-9]{1,30}(?:点|dot)(?:com|cn|net|top|xyz|cc|vip|shop|club|store|site|link|info)(?![a-z])|https?[a-z0-9]{3,}|www[a-z0-9]{3,}")
# A landline (area code, then 7-8 digits) or a 400/800 number: no one's personal number,
# but an offer's contact all the same.
LANDLINE = re.compile(r"(?<!\d)(?:0\d{2,3}[\s-]?\d{3,4}[\s-]?\d{4}|[48]00[\s-]?\d{3}[\s-]?\d{4})(?!\d)")
# ROOM, bounded: a room on its own ("3-502", "6栋1101"), not digits inside a longer run
# (138-1234-5678); its digits are not read into a phone (find_numbers).
ROOM_NUMBER = re.compile(r"(?<![\d\-])\d{1,2}\s*(?:栋|幢|号楼|座|-)\s*\d{3,4}(?![\d\-])")
ROOM = re.compile(r"(\d{1,2}\s*(?:栋|幢|号楼|座|-)\s*(?:\d\s*单元\s*)?\d{3,4}\s*(?:室|房|号)?)")


# A number after another app's label ("WhatsApp: +852 9341 6602", "Line 861390077", "tg：…"),
# digit words and Chinese numerals already read as digits.
APP_NUMBER = re.compile(r"(?<![a-z])(?:whatsapp|line|telegram|tg|signal|skype|kakao|飞机号?|电报)[^\w]{0,3}(?:id|号)?[^\w]{0,3}(?:plus\s{1,3})?\+?\d(?:[\s\-,]{0,6}\d){6,14}(?!\d)")


def find_handles(text: str) -> list[str]:
    """WeChat / QQ ids after a label (微信号 abc123), in the compact form."""
    comp = compact(text).translate(_CN_DIGITS)  # QQ 一二三四五六七八九
    refs = lexicon().reference_labels  # 工单号 WX2024...: a reference, not a WeChat id
    found = [m.group(2) for m in HANDLE.finditer(comp) if not any(comp[:m.start()].endswith(w) for w in refs)]
    found += HANDLE_BEFORE.findall(comp)
    plain = _fold(text)
    folded = plain.translate(_CN_DIGITS)
    found += SHORT_HANDLE.findall(folded) or SYMBOL_HANDLE.findall(folded) or EMOJI_HANDLE.findall(folded)
    found += APP_NUMBER.findall(_fold(_aligned(text)).translate(_CN_DIGITS))  # digit words read
    return found + EMAIL.findall(plain)


def find_links(text: str) -> list[str]:
    folded = EMAIL.sub(" ", _fold(text))  # an e-mail's domain is not a link
    folded = _SPOKEN_SLASH.sub("/", _SPOKEN_DOT.sub(".", folded))
    dotted = _SPACED_SLASH.sub("/", _FAKE_DOT.sub(".", folded))
    found = [u for u in URL.findall(dotted)] or URL_PATH.findall(dotted)
    allowed = lexicon().allowed_domains
    found = [u for u in found if not any(d in u for d in allowed)]
    if not found and not EMAIL.search(folded.replace(" ", "")) and URL_SPOKEN.search(compact(EMAIL.sub(" ", _fold(text)))):
        found.append("(spoken link)")
    return found


# --- masking -----------------------------------------------------------------------------

_LONG_DIGITS = 5  # any run this long may be a phone, QQ or account number
_LABELLED_ID = re.compile(r"(?i)((?:微信号?|vx|qq号?)\s*[:：]?\s*(?:是|为)?\s*)([a-z0-9][a-z0-9_-]{4,19})")
_ID_TOKEN = re.compile(r"(?i)(?<![a-z0-9])(?=[a-z0-9_-]{0,19}\d)(?=[a-z0-9_-]{0,19}[a-z])[a-z][a-z0-9_-]{4,19}(?![a-z0-9])")


def mask(text: str, strict: bool = True) -> str:
    """The text with personal data starred: phones 138****1111, IDs and cards
    all but the last 4, any other number of 5+ digits (QQ, accounts), ids
    mixing letters and digits (WeChat ids) and e-mails.

    Used for everything that leaves the bot (cards, logs, answers) and for the
    evidence kept for appeals. `strict=False` (the bot's own answers) masks
    only phones, IDs, cards, e-mails and labelled ids, so "消费满15000元" stays."""
    # Detection on a per-character NFKC copy (full-width digits read as digits),
    # stars in the original, so the rest of the text (，：) is left exactly as written.
    original = text or ""
    aligned = _aligned(original)
    chars = list(original)
    done: set[int] = set()
    for hit in find_numbers(aligned):
        keep_head = 3 if hit.kind == "phone" else 0
        for k, p in enumerate(hit.positions):
            done.add(p)
            if keep_head <= k < len(hit.positions) - 4:
                chars[p] = "*"
    for groups in (_runs(aligned) if strict else []):  # anything else long enough to identify someone
        flat = [d for g in groups for d in g if d[1] not in done]
        if len(flat) >= _LONG_DIGITS:
            for _, p in flat[:-2]:
                chars[p] = "*"

    def star(a: int, b: int) -> None:
        for i in range(a, b):
            chars[i] = "*"

    for m in EMAIL.finditer(aligned.lower()):
        star(m.start() + 1, m.start() + m.group(0).index("@"))
    if strict:
        for m in _ID_TOKEN.finditer(aligned):
            star(m.start() + 2, m.end())
    else:
        for m in _LABELLED_ID.finditer(aligned):
            star(m.start(2) + 2, m.end(2))
    return "".join(chars)


def _aligned(text: str) -> str:
    """NFKC character by character, keeping a character whose form would change length;
    English digit words in a number ("one three eight 2046…") read as digits, padded with
    spaces so every position stays where it was (masking uses them)."""
    out = []
    for c in text:
        n = unicodedata.normalize("NFKC", c)
        out.append(n if len(n) == 1 else c)
    return _EN_NUMBER.sub(_en_digits, "".join(out))


_EN_DIGITS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
              "seven": "7", "eight": "8", "nine": "9"}
_EN_WORD = "(?:zero|one|two|three|four|five|six|seven|eight|nine)"
# Digit words in a number: two or more in a row, or one beside digits ("one three eight 2046").
# "one or two of us" and "at nine" stay words; repeats bounded (linear on any text).
_EN_NUMBER = re.compile(rf"(?i)(?<![a-z]){_EN_WORD}(?:[\s\-,.]{{1,3}}{_EN_WORD}){{1,12}}(?![a-z])"
                        rf"|(?<![a-z]){_EN_WORD}(?=[\s\-]{{1,3}}\d)|(?<=\d)[\s\-]{{1,3}}{_EN_WORD}(?:[\s\-,.]{{1,3}}{_EN_WORD}){{0,12}}(?![a-z])")
_EN_ONE = re.compile(rf"(?i){_EN_WORD}")


def _en_digits(m: re.Match) -> str:
    return _EN_ONE.sub(lambda w: _EN_DIGITS[w.group(0).lower()].ljust(len(w.group(0))), m.group(0))


# --- the verdict -----------------------------------------------------------------------------

@dataclass
class Verdict:
    violation: str = "none"  # none / ad / insult / privacy / illegal
    reasons: list[str] = field(default_factory=list)
    terms: dict[str, list[str]] = field(default_factory=dict)
    numbers: list[str] = field(default_factory=list)  # kinds found: phone / id / card
    handles: int = 0
    links: int = 0

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


_LATIN_WORD = re.compile(r"[a-z]+")
# A word in leetspeak ("m0r0n", "1d10t", "@sshole"): letters with digits standing for letters.
# A run of letters, digits, @ and $ with two letters or more is read as letters when every
# character reads as one; otherwise its letter runs are its words, as before ("wx123" -> wx).
# (One pass over runs: a pattern needing a letter somewhere inside backtracked on long digit runs.)
_LATIN_RUN = re.compile(r"[a-z@$0-9*]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})


def _unmasked(run: str, terms: str) -> str:
    """A word with its vowels starred out ("f*ck", "b*tch", "id**t") read with the vowel
    that makes it part of a listed term (`terms`: the Latin terms, one per line); without
    one, the stars are dropped."""
    for vowel in "uioae":
        cand = run.replace("*", vowel)
        if cand in terms:
            return cand
    return run.replace("*", "")


def _latin_words(folded: str, terms: str = "") -> list[str]:
    words: list[str] = []
    unmasked: dict[str, str] = {}  # each starred word read once per text
    for run in _LATIN_RUN.findall(folded):
        if "*" in run:
            if run not in unmasked:
                unmasked[run] = (_unmasked(run, terms) if run.strip("*") and run.count("*") <= 3
                                 else run.replace("*", ""))
            run = unmasked[run]
            if not run:
                continue
        if run.isalpha():
            words.append(run)
            continue
        read = run.translate(_LEET)
        if read.isalpha() and sum(c.isalpha() for c in run) >= 2:
            words.append(read)
        else:
            words += _LATIN_WORD.findall(run)
    return words


_AROUND = AROUND_CHARS  # characters read before and after a hit for its exceptions


def _term_hits(comp: str, lex: Lexicon, text: str) -> dict[str, dict[str, set[str]]]:
    hits: dict[str, dict[str, set[str]]] = {}
    # English words are looked up as words of the text as written ("a bunch of morons"):
    # the compact form glues a sentence into one run, where no word has an edge.
    terms = "\n".join(lex.latin_terms) if "*" in text else ""  # only a starred word needs them
    toks = _latin_words(_fold(text), terms) if lex.latin_terms else []
    # Each word, and each pair or triple of words read as one ("fake invoices" -> fakeinvoice).
    for tok in set(toks) | {a + b for a, b in zip(toks, toks[1:])} | {a + b + c for a, b, c in zip(toks, toks[1:], toks[2:])}:
        for form in (tok, tok[:-1] if tok.endswith("s") else "", tok[:-2] if tok.endswith("es") else ""):
            for cat, strength, word in lex.latin_terms.get(form, ()):
                hits.setdefault(cat, {}).setdefault(strength, set()).add(word)
    _short_latin_hits(hits, text, lex, comp)
    anywhere: dict[str, bool] = {}
    for end, entries in lex.automaton.iter(comp):
        for cat, strength, word, n in entries:  # n: the length of the form matched
            start = end - n + 1
            # A Latin word, or a word half in pinyin (n differs from its length), must not be
            # inside a longer Latin word: "sb" in "usb", "ma的" (妈的) in "karma的" are no insults.
            # (加v before an id, "加vmm520", is matched as it stands.)
            if word.isascii() or n != len(word):
                key = comp[start:end + 1]
                before = comp[start - 1] if start > 0 else ""
                after = comp[end + 1] if end + 1 < len(comp) else ""
                if (key[0].isascii() and key[0].isalnum() and before.isascii() and before.isalnum()) or \
                        (key[-1].isascii() and key[-1].isalnum() and after.isascii() and after.isalnum()):
                    continue
            # What is read around a hit is bounded (_AROUND characters), so a long text full of
            # hits costs linear time, not a copy of the text per hit.
            prev = comp[max(0, start - _AROUND):start]
            if cat == "insult" and any(prev.endswith(x) for x in lex.self_refs):
                continue  # "我这个猪脑子": the writer about themself
            rule = lex.categories[cat].exceptions.get(word)
            if rule and _excepted(rule, word, comp, prev, comp[end + 1:end + 1 + _AROUND], anywhere):
                continue
            hits.setdefault(cat, {}).setdefault(strength, set()).add(word)
    return hits


def _excepted(rule: dict, word: str, comp: str, prev: str, rest: str, anywhere: dict[str, bool]) -> bool:
    """Whether a hit is one of its exceptions: what follows it (not_before), what comes before
    it (not_after), or a word anywhere in the message (not_with, looked up once per word)."""
    if any(rest.startswith(x) for x in rule.get("not_before", [])):
        return True
    if any(prev.endswith(x) for x in rule.get("not_after", [])):
        return True
    if rule.get("not_with") and word not in anywhere:
        anywhere[word] = any(x in comp for x in rule["not_with"])
    return anywhere.get(word, False)


def _short_latin_hits(hits: dict, text: str, lex: Lexicon, comp: str = "") -> None:
    """A short Latin term written as a word of its own ("一帮 rz,SB+1"), which the compact form
    glues to the letters around it; its exceptions are read on what is written beside it."""
    if not lex.short_latin:
        return
    folded = _fold(text)
    for m in _LATIN_WORD.finditer(folded):
        for cat, strength, word in lex.short_latin.get(m.group(0), ()):
            rule = lex.categories[cat].exceptions.get(word) or {}
            rest = _NOT_WORD.sub("", folded[m.end():m.end() + 24])
            prev = _NOT_WORD.sub("", folded[max(0, m.start() - 24):m.start()])
            if any(rest.startswith(x) for x in rule.get("not_before", [])) or \
                    any(prev.endswith(x) for x in rule.get("not_after", [])) or \
                    any(x in comp for x in rule.get("not_with", [])):
                continue
            hits.setdefault(cat, {}).setdefault(strength, set()).add(word)


_NOT_WORD = re.compile(r"[\W_]+")


def _term_findings(v: Verdict, hits: dict, comp: str, lex, contact: bool, boosted: set[str],
                   reporting: bool) -> dict[str, str]:
    """The categories the lexicon's words decide (one strong word, or enough weak ones, or
    weak ones beside contact details or offer words); every word found goes to v.terms."""
    found: dict[str, str] = {}
    for cat, by in hits.items():
        if reporting and cat in ("ad", "illegal"):
            v.terms[cat] = sorted(set().union(*by.values()))
            continue
        strong, weak = sorted(by.get("strong", ())), sorted(by.get("weak", ()))
        # 优惠 inside 优惠券 is one word, not two signals.
        weak = [w for w in weak if not any(w != o and w in o for o in strong + weak)]
        need = lex.categories[cat].weak_needed
        if strong:
            found[cat] = f"{cat}: {'、'.join(strong)}"
        elif weak and (contact or not any(u in comp for u in lex.categories[cat].weak_unless)) \
                and (len(weak) >= need or contact or cat in boosted):
            extra = " + contact details" if contact else (" + offer words" if cat in boosted else "")
            found[cat] = f"{cat}: {'、'.join(weak)}{extra}"
        v.terms[cat] = strong + weak
    return found


# A quotation (bounded: linear on any text).
_QUOTED = re.compile(r"[“\"「『‘][^”\"」』’]{1,120}[”\"」』’]|'[^'\n]{1,120}'")


# An offer put as a question ("有需要查人的吗", "有没有要办证的吗"): its 吗 is no real question.
_OFFER_ASKED = re.compile(r"有(?:没有)?(?:需要|要)[\u4e00-\u9fffa-z]{1,8}?的吗")


def _unspaced(text: str) -> str:
    """A message spaced out character by character ("车 牌 粤 B D 1 2 3 4 5 那 家", "收 企 业 对 公
    账 户") read without its spaces, so plates, rooms, numbers and words are whole again."""
    tokens = text.split()
    if len(tokens) >= 5 and sum(len(t) == 1 for t in tokens) >= 0.6 * len(tokens):
        return "".join(tokens)
    return text


def analyse(text: str) -> Verdict:
    """Every rule the text breaks, and the one that wins (data: precedence). The steps, in
    order: the lexicon's words and combinations, personal numbers and ids, privacy by
    combination, contact details beside an offer, and the model's word when nothing else spoke."""
    lex = lexicon()
    text = _unspaced(text)
    comp = compact(text)
    v = Verdict()
    hits = _term_hits(comp, lex, text)
    # Quoting an ad to report it is not advertising (data: report_cues).
    cues = comp.replace("是不是", "是否")  # "是不是诈骗" asks about a scam: no negation in it
    cues = _OFFER_ASKED.sub("", cues)  # "有需要查人的吗" offers: its 吗 asks nothing
    for neg in lex.report_negations:  # "卖保险的不是骗子" reports nothing
        cues = cues.replace(neg, "")
    warned = any(c in cues for c in lex.report_cues)
    # A warning that quotes the scam's contact ("有人冒充物业说“加微信wy-tuikuan退费”，千万别信")
    # gives nobody's details: what is inside the quotation marks is not looked at for them.
    seen = _QUOTED.sub(" ", text) if warned else text
    numbers = find_numbers(seen)
    handles = find_handles(seen)
    links = find_links(seen)
    v.numbers = [n.kind for n in numbers]
    v.handles, v.links = len(handles), len(links)
    # A way to reach someone: an ID or bank card number is personal data, not a contact.
    contact = any(n.kind == "phone" for n in numbers) or bool(handles or links)
    boosted: set[str] = set()
    if lex.boosters is not None:
        for _, cats in lex.boosters.iter(comp):
            boosted.update(cats)
    reporting = not contact and warned
    found = _term_findings(v, hits, comp, lex, contact, boosted, reporting)
    if links:
        found.setdefault("ad", "ad: link")
    _combo_findings(found, comp, cues, lex, reporting)
    if comp in lex.whole_insults:
        found.setdefault("insult", f"insult: {comp}")
    _number_findings(found, v, text, comp, lex, numbers, handles)
    found.update(privacy_combination(text, comp, found))
    if found.get("privacy") == SPREAD_PHONE:
        contact = True  # a number spelt out in parts is contact details all the same
        if _own_request(comp, lex):
            found.pop("privacy")  # the writer's own number, given to the property to be reached
    _offer_findings(found, text, comp, lex, contact, boosted, handles)
    if not found:
        _model_finding(found, v, text, comp, lex, boosted, reporting)
    for cat in lex.precedence:
        if cat in found:
            if v.violation == "none":
                v.violation = cat
            v.reasons.append(found[cat])
    return v


def _combo_findings(found: dict[str, str], comp: str, cues: str, lex: Lexicon, reporting: bool) -> None:
    for combo in lex.combos:
        if combo.category in found or (reporting and combo.category in ("ad", "illegal")):
            continue
        if all(p.search(comp) for p in combo.groups) and not any(w in cues for w in combo.unless):
            found[combo.category] = f"{combo.category}: {combo.why}"


_KINDS = {"phone": "mobile number", "id": "ID card number", "card": "bank card number"}


def _number_findings(found: dict[str, str], v: Verdict, text: str, comp: str, lex: Lexicon,
                     numbers: list[NumberHit], handles: list[str]) -> None:
    """Phones, IDs, bank cards and WeChat/QQ ids disclosed (not the writer's own, given to the property)."""
    if not any(n.kind == "id" for n in numbers) and ID_LABELLED.search(unicodedata.normalize("NFKC", text)):
        # "身份证号 1101011990...": a labelled 18-digit number with a real birth date,
        # whatever its check digit (a typo does not make it less personal).
        numbers.append(NumberHit("id", []))
        v.numbers.append("id")
    if numbers or handles:
        what = sorted({_KINDS[n.kind] for n in numbers} | ({"WeChat/QQ id"} if handles else set()))
        found["privacy"] = "privacy: " + "、".join(what) + " disclosed"
        if ROOM.search(unicodedata.normalize("NFKC", text)):
            found["privacy"] += " with a room number"
    if "privacy" in found and _own_request(comp, lex):
        # "管家你好，我是6栋2102业主，手机136…，卫生间漏水，麻烦安排师傅": the writer's own home and
        # number, given to the property to be reached, are no leak (and no offer).
        found.pop("privacy")
        v.reasons.append("own details given to the property")


def _offer_findings(found: dict[str, str], text: str, comp: str, lex: Lexicon, contact: bool,
                    boosted: set[str], handles: list[str]) -> None:
    """Contact details (a number, an id, a hotline) beside an offer: advertising."""
    offer_words = lex.categories["ad"].model_support if "ad" in lex.categories else []
    if contact and "privacy" in found and "ad" not in found and "illegal" not in found:
        # Contact details next to an offer are an ad first ("专业搬家 138..."):
        # the model tells an offer from a neighbour's number being exposed.
        p = model().proba(text)
        offer = any(w in comp for w in offer_words)
        if offer and p["ad"] < 0.2 and full_name_in(text):
            # "王芳 电话 137…，就是楼下开店那个": an offer word describing the person
            # named, whose number it is, is no offer when the model sees none either.
            offer = False
        # A name with a detail of theirs (欠我…) and no offer word: that person's number exposed.
        exposed = not offer and "ad" not in boosted and p["ad"] < 0.6 and tells_about_someone(text)
        if (p["ad"] >= 0.35 and not exposed) or "ad" in boosted or offer:
            found["ad"] = f"ad: offer + contact details (model {p['ad']:.2f})"
        elif any(w in comp for w in lex.own_details.get("offered", ())) and not full_name_in(text):
            # "vx同手机号 159…": the writer's own number offered to be reached, nobody else's.
            found["ad"] = "ad: the writer's number offered for contact"
    if not found and LANDLINE.search(unicodedata.normalize("NFKC", text)) and offer_words:
        # A landline or 400 number with an offer ("搬家199元起 热线021-5883…"): an ad, unless
        # it is the property's own or a question about one (moderation.yaml hotline_not_an_offer).
        own = any(w in comp for w in lex.hotline_not_an_offer)
        if any(w in comp for w in offer_words) and not own:
            found["ad"] = "ad: an offer with a hotline"
    if handles and "privacy" in found and "ad" not in found and "illegal" not in found \
            and not names_someone(text):
        # A WeChat / QQ id with nobody else in the message is the writer's own,
        # posted for members to add: soliciting contact, which is advertising.
        found["ad"] = "ad: a contact id offered (no one else named)"


def _model_finding(found: dict[str, str], v: Verdict, text: str, comp: str, lex: Lexicon,
                   boosted: set[str], reporting: bool) -> None:
    """The model's word alone, when it is very sure; or fairly sure with one weak word or
    offer word of the same category behind it. Never for privacy (a leak is shown by what
    the rules find: numbers, a home + a name), nor an ad or offence that is being reported."""
    support = {c for c, t in v.terms.items() if t} | boosted
    support |= {c.name for c in lex.categories.values() if any(w in comp for w in c.model_support)}
    guess = opinion(text, support=support)
    if guess and guess[0] == "ad" and any(u in comp for u in lex.categories["ad"].weak_unless):
        guess = None  # "送给需要的小朋友 门卫自取": a neighbour's own thing given away
    if guess and reporting and guess[0] in ("ad", "illegal"):
        guess = None  # "公安提醒：不要出租自己的银行卡": a warning quotes the offence
    if guess:
        found[guess[0]] = f"{guess[0]}: model {guess[1]:.2f}"


def check(text: str, chat: str, role: str) -> tuple[str, str, str]:
    """The router's checker: (violation, action, why). The action is the first
    rung of the ladder a member with no earlier strikes would get."""
    if role in lexicon().exempt_roles:
        return "none", "none", ""
    v = analyse(text)
    if v.violation == "none":
        return "none", "none", ""
    return v.violation, first_action(v.violation, chat), v.why


def warm_up() -> None:
    """Load the lexicon, pinyin, jieba's name tagger and train the model in the
    worker parent, so no owner's message pays for it (bot/worker.py WARMUPS)."""
    lexicon()
    if not cache_path().exists():
        save_cache(model())  # later processes (guanjia route, other workers) load it
    model()
    analyse("3栋1201王建国 加微信 abc123")
