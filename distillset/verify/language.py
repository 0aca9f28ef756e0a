"""A small deterministic language identifier: writing system first, then frequent words.

IFEval's ``language:response_language`` (and the "in English" half of ``change_case:*``) needs
to know which language a response is in. The reference implementation calls ``langdetect``; this
module avoids the dependency (and its randomness: langdetect is non-deterministic unless seeded)
with two steps:

1. **Script.** Letters are counted per writing system; the most frequent one decides alone when
   it belongs to one language here: Bengali ``bn``, Gurmukhi ``pa``, Gujarati ``gu``, Tamil
   ``ta``, Telugu ``te``, Kannada ``kn``, Malayalam ``ml``, Sinhala ``si``, Thai ``th``, Lao
   ``lo``, Hangul ``ko``, kana ``ja`` (also when mixed with Han), Han ``zh``, Greek ``el``,
   Hebrew ``he``, Georgian ``ka``, Armenian ``hy``, Ethiopic ``am``.
2. **Frequent words and letters** split the scripts that several languages share: Devanagari
   (``hi``, ``mr``, ``ne``), Arabic (``ar``, ``fa``, ``ur``: letters that only one of them uses
   count too), Cyrillic (``ru``, ``bg``, ``uk``; ``ы``/``э``/``ё`` and ``і``/``ї``/``є``/``ґ``
   count too) and Latin (``en``, ``de``, ``fr``, ``es``, ``it``, ``pt``, ``nl``, ``sv``, ``fi``,
   ``pl``, ``tr``, ``id``, ``sw``, ``vi``; Vietnamese letters such as ``ơ``, ``ư``, ``đ`` count too).

It covers every language the shipped IFEval file asks for (hi, kn, mr, vi, ko, sw, de, pa, fa,
ru, bg, pt, gu, te, it, ar, ta, fi, ur, th, ne, bn) and English. ``SUPPORTED`` lists all codes it
can return. It is meant for whole responses (a few sentences); on a handful of words, or a text
mixing languages, it can be wrong. A text without letters has no language (``None``).
"""

from __future__ import annotations

import unicodedata
from collections import Counter

# (first code point, last code point, script) for the scripts that decide alone or need step 2.
_SCRIPT_RANGES = (
    (0x0041, 0x024F, "latin"), (0x1E00, 0x1EFF, "latin"),
    (0x0370, 0x03FF, "greek"), (0x0400, 0x052F, "cyrillic"), (0x0530, 0x058F, "armenian"),
    (0x0590, 0x05FF, "hebrew"), (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"),
    (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
    (0x0900, 0x097F, "devanagari"), (0x0980, 0x09FF, "bengali"), (0x0A00, 0x0A7F, "gurmukhi"),
    (0x0A80, 0x0AFF, "gujarati"), (0x0B80, 0x0BFF, "tamil"), (0x0C00, 0x0C7F, "telugu"),
    (0x0C80, 0x0CFF, "kannada"), (0x0D00, 0x0D7F, "malayalam"), (0x0D80, 0x0DFF, "sinhala"),
    (0x0E00, 0x0E7F, "thai"), (0x0E80, 0x0EFF, "lao"), (0x10A0, 0x10FF, "georgian"),
    (0x1200, 0x137F, "ethiopic"), (0x1100, 0x11FF, "hangul"), (0x3130, 0x318F, "hangul"),
    (0xAC00, 0xD7AF, "hangul"), (0x3040, 0x30FF, "kana"), (0x4E00, 0x9FFF, "han"), (0x3400, 0x4DBF, "han"),
)  # fmt: skip
_SINGLE_LANGUAGE = {
    "bengali": "bn", "gurmukhi": "pa", "gujarati": "gu", "tamil": "ta", "telugu": "te", "kannada": "kn",
    "malayalam": "ml", "sinhala": "si", "thai": "th", "lao": "lo", "hangul": "ko", "kana": "ja",
    "han": "zh", "greek": "el", "hebrew": "he", "georgian": "ka", "armenian": "hy", "ethiopic": "am",
}  # fmt: skip

_WORDS = {
    "latin": {
        "en": "the and of to is in that it for you was with on as are this be at have not by but from they "
        "or an we can will your which their has more about what would there all if my so do",
        "de": "der die und das ist nicht ich mit sich ein eine zu den von es auf für dem im auch wir sie er "
        "wird werden sind oder aber wie nach bei noch nur kann einen einer dass über mehr",
        "fr": "le la les et des est une du en que qui pas pour dans sur au avec ce il elle sont mais ou plus "
        "nous vous cette aux par été être fait comme ses leur",
        "es": "el los las que de y en un una por con para es del se no lo como más pero sus su al está son "
        "este esta también muy fue hay ya porque cuando todo",
        "it": "il di che è la non per una gli sono della del le con un si da nel alla anche come più questo "
        "ma ha lo dei delle essere sua suo molto perché ed era hanno questa tutti",
        "pt": "não que os uma um é com para do da em no na se por mais as dos das como mas ao ele ela são "
        "foi seu sua isso também você muito já está pelo pela quando nos",
        "nl": "de het een en van is dat niet op te zijn voor met die er ook als maar om aan wordt door bij "
        "nog naar ze hij wij worden dan kan uit",
        "sv": "och att det som en är på för med av inte till den har om jag de ett men var så vi kan från",
        "fi": "ja on ei että se hän oli ovat mutta kanssa tai kun myös ole joka jos niin ne mitä kuin sen "
        "tämä sitä vain voi olla mukaan sekä hänen nyt jo tässä",
        "pl": "i w nie na się z jest to że do jak o co ale po tak dla czy od przez jego są być już",
        "tr": "ve bir bu da de için ile çok ne gibi daha olarak ama o en var değil mi kadar sonra ben sen olan",
        "id": "yang dan di ini itu dengan untuk tidak dari dalam akan pada juga ke ada bisa saya anda mereka "
        "kami sudah atau karena oleh",
        "sw": "na ya wa kwa ni katika za la kuwa hii yake cha vya kama lakini pia sana huo hiyo wao yeye "
        "mimi wewe sisi kwamba ili hata baada kutoka hivyo watu kila mtu ndani zaidi",
        "vi": "và của là có không được trong một cho những các người với này đã để khi từ theo như về cũng "
        "đến nhiều năm sẽ tôi bạn ra thì làm",
    },
    "cyrillic": {
        "ru": "и в не на я что с он как это по но а из у к так его за от то же все она был мы было для "
        "только они или уже бы если когда ещё очень может",
        "bg": "и в на е да се не за от че са това като с по но а той тя ще му които която който бъде има "
        "още един една най към след във със при много",
        "uk": "і в не на що з та як це до у за є від але його він вона ми ви які який також",
    },
    "arabic": {
        "ar": "في من على أن إلى هذا التي الذي عن مع هذه كان ما لا هو هي ذلك قد كل بين أو",
        "fa": "است این را که در به از با های می برای آن یک هم تا شود ما او بود کرد خود نیز ای",
        "ur": "ہے کے کی میں اور کا سے کو یہ نے ہیں پر ایک بھی تھا وہ کہ لیے نہیں ہو جو گیا",
    },
    "devanagari": {
        "hi": "है के की में और का को से यह नहीं हैं पर एक भी था कि लिए वह जो हो गया कर करने तो इस",
        "mr": "आहे आणि या व हे ते मध्ये नाही आहेत होते त्या करण्यात म्हणून पण तर असे केले होता येथे त्यांच्या",
        "ne": "छ र मा गर्न छन् भएको पनि यो थियो गरेको हुन्छ लागि तथा उनी भने गरी छैन हुने",
    },
}
_WORD_SETS = {script: {code: set(words.split()) for code, words in table.items()} for script, table in _WORDS.items()}
# Letters that only one language of a shared script uses; each occurrence counts as half a word.
_LETTERS = {
    "vi": "ơưđăạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ",
    "ru": "ыэё",
    "uk": "іїєґ",
    "ur": "ےٹڈڑںھہ",
    "fa": "پچژگکی",
    "ar": "ةىيكأإ",
}
_PUNCTUATION = "".join(chr(c) for c in range(0x2000, 0x206F)) + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~।॥،؛؟۔«»“”‘’…"

SUPPORTED = frozenset(_SINGLE_LANGUAGE.values()) | {code for table in _WORDS.values() for code in table}


def _script(char: str) -> str | None:
    point = ord(char)
    for first, last, script in _SCRIPT_RANGES:
        if first <= point <= last:
            return script
    return None


def _words(text: str) -> list[str]:
    # Split on spaces and strip punctuation: `\w` would cut Indic words at their vowel signs.
    return [word for word in (token.strip(_PUNCTUATION) for token in text.lower().split()) if word]


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the language ``text`` is most likely in, or None without letters.

    Args:
        text: a response; a few sentences or more for a reliable answer.

    Returns:
        One of ``SUPPORTED`` (e.g. ``"en"``, ``"hi"``, ``"zh"``), or None when ``text`` has no letters.
    """
    scripts = Counter(script for char in text if char.isalpha() or unicodedata.category(char) == "Mn"
                      for script in [_script(char)] if script)  # fmt: skip
    if not scripts:
        return None
    if scripts.get("kana") and scripts.get("han", 0) + scripts["kana"] >= max(scripts.values()):
        return "ja"
    script = scripts.most_common(1)[0][0]
    if script in _SINGLE_LANGUAGE:
        return _SINGLE_LANGUAGE[script]
    words = _words(text)
    lowered = text.lower()
    scores = {}
    for code, vocabulary in _WORD_SETS[script].items():
        hits = sum(word in vocabulary for word in words)
        letters = sum(lowered.count(letter) for letter in _LETTERS.get(code, ""))
        scores[code] = hits + letters / 2
    # The first language of each table wins ties (English, Russian, Arabic, Hindi): the most likely one.
    return max(scores, key=lambda code: scores[code])
