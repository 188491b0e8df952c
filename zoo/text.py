"""English text front end for character-based TTS: keithito/tacotron ``english_cleaners`` and a symbol table.

``normalize_text`` follows keithito's ``text/cleaners.py`` + ``text/numbers.py`` (ASCII transliteration, lower
case, number and abbreviation expansion, whitespace collapse) with these deliberate differences, each a bug in
the reference: unicode is transliterated with ``unicodedata`` NFKD plus a small table instead of ``unidecode``
(non-Latin scripts are left for ``SymbolTable.encode`` to drop and count, rather than romanised); only properly
grouped numbers ("1,000,000") lose their commas, so a list "1,2" is not read as "twelve"; decimals read their
digits one by one ("3.14" -> "three point one four"); "£1" is "one pound" and "£2.50" "two pounds, fifty pence";
"50%" is "fifty percent"; and the result is stripped.
"""

from __future__ import annotations

import collections
import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch

if TYPE_CHECKING:
    import inflect

__all__ = ["DEFAULT_CHARACTERS", "EOS", "PAD", "EncodedText", "SymbolTable", "normalize_text"]

PAD = "_"
EOS = "~"
DEFAULT_CHARACTERS = "abcdefghijklmnopqrstuvwxyz!'(),-.:;? \""


@functools.cache
def _inflect() -> inflect.engine:
    """The inflect engine, imported on first use: it costs seconds and only number expansion needs it."""
    import inflect

    return inflect.engine()


# Characters NFKD cannot decompose into ASCII + combining marks, and typographic punctuation that has an ASCII
# equivalent in the symbol table (LJSpeech and book text are full of curly quotes and dashes).
_TRANSLITERATION = str.maketrans(
    {
        "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ð": "d", "Ð": "D",
        "þ": "th", "Þ": "TH", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i",
        "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
        "«": '"', "»": '"', "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "…": "...",
        "\u00a0": " ",
    }
)  # fmt: skip

# keithito/tacotron text/cleaners.py, same order and expansions.
_ABBREVIATIONS = [
    (re.compile(rf"\b{abbreviation}\.", re.IGNORECASE), expansion)
    for abbreviation, expansion in [
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
    ]
]

_GROUPED_NUMBER_RE = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
# Failure classes of keithito's cleaners on LJSpeech's own transcripts, and how its readers read them:
_LETTERS_DIGITS_RE = re.compile(r"\b([a-z]+)(\d+)\b")  # "c2766": "c two seven six six", not "ctwenty-seven sixty-six"
_NUMBER_SIGN_RE = re.compile(r"\bno\.\s*([a-z]*\d+)\b")  # "no. 162": "number one sixty-two"
_AMPERSAND_RE = re.compile(r"\s*&\s*")  # "smith & co.": "smith and company"
# "George III" -> "George the third", "Charles I." -> "Charles the first"; runs before lower-casing. Roman numerals
# up to 39 after a capitalised word; a lone "I" only before punctuation or the end ("Then I went" stays).
_REGNAL_RE = re.compile(r"\b([A-Z][a-z]+)\s+(?=[IVX])(X{0,3}(?:IX|IV|V?I{0,3}))\b(?!')")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}
# After these words a Roman numeral is a number, not a regnal ordinal: "World War II" is "World War two".
_CARDINAL_ROMAN_AFTER = {"War", "Chapter", "Part", "Volume", "Section", "Book", "Act", "Class", "Title", "Article",
                         "Appendix", "Plate", "Table", "Figure", "Exhibit", "Vol", "Chap"}
_CURRENCY_RE = re.compile(r"([$£€])(\d+(?:\.\d+)?)")
_DECIMAL_RE = re.compile(r"(\d+)\.(\d+)")
_PERCENT_RE = re.compile(r"(\d)\s*%")
_ORDINAL_RE = re.compile(r"\d+(?:st|nd|rd|th)\b")
_NUMBER_RE = re.compile(r"\d+")
_WHITESPACE_RE = re.compile(r"\s+")

_CURRENCY_UNITS = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
                   "€": ("euro", "euros", "cent", "cents")}  # fmt: skip

_DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _to_ascii(text: str) -> str:
    """NFKD-decompose and drop combining marks ("café" -> "cafe"); characters with no ASCII form are kept."""
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _cardinal(number: int) -> str:
    return _inflect().number_to_words(number, andword="")


def _roman_to_int(numeral: str) -> int:
    values = [_ROMAN_VALUES[ch] for ch in numeral]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _expand_regnal(match: re.Match[str]) -> str:
    name, numeral = match.group(1), match.group(2)
    rest = match.string[match.end():]
    if numeral == "I" and not re.match(r"\s*(?:[.,;:!?)]|$)", rest):
        return match.group(0)  # the pronoun: "Then I went"
    number = _roman_to_int(numeral)
    if name in _CARDINAL_ROMAN_AFTER:
        return f"{name} {_cardinal(number)}"
    return f"{name} the {_inflect().number_to_words(_inflect().ordinal(number))}"


def _expand_identifier(number: str) -> str:
    """A number used as a name ("No. 162", "C2766"'s digits are read one by one elsewhere): in digit pairs, as
    LJSpeech's reader reads them ("one sixty-two"), except round numbers and one or two digits (cardinals)."""
    value = int(number)
    if len(number) < 3 or value % 100 == 0 or number.startswith("0"):
        return _cardinal(value)
    return _inflect().number_to_words(number, group=2, zero="oh").replace(",", "")


def _expand_currency(match: re.Match[str]) -> str:
    # Amounts are spelled out here, as cardinals: left as digits, "£2372" would later read as a year.
    one, many, sub_one, sub_many = _CURRENCY_UNITS[match.group(1)]
    whole, _, fraction = match.group(2).partition(".")
    if len(fraction) > 2:
        # "$1.005" is not a price; read the amount as a decimal
        return f"{match.group(2)} {many}"
    major = int(whole)
    minor = int(fraction.ljust(2, "0")) if fraction else 0  # "$3.5" is three dollars fifty
    if major and minor:
        return f"{_cardinal(major)} {one if major == 1 else many}, {_cardinal(minor)} {sub_one if minor == 1 else sub_many}"
    if minor:
        return f"{_cardinal(minor)} {sub_one if minor == 1 else sub_many}"
    return f"{_cardinal(major)} {one if major == 1 else many}"


def _expand_decimal(match: re.Match[str]) -> str:
    return f"{match.group(1)} point {' '.join(_DIGIT_WORDS[int(d)] for d in match.group(2))}"


def _expand_ordinal(match: re.Match[str]) -> str:
    return _inflect().number_to_words(match.group(0))


def _expand_number(match: re.Match[str]) -> str:
    """keithito's rule: numbers in (1000, 3000) are read as years, everything else as a cardinal."""
    number = int(match.group(0))
    if 1000 < number < 3000:
        if number == 2000:
            return "two thousand"
        if 2000 < number < 2010:
            return "two thousand " + _inflect().number_to_words(number % 100)
        if number % 100 == 0:
            return _inflect().number_to_words(number // 100) + " hundred"
        # group=2 reads digit pairs: "eighteen, sixty-five", "nineteen, oh five"
        return _inflect().number_to_words(number, andword="", zero="oh", group=2).replace(", ", " ")
    return _inflect().number_to_words(number, andword="")


def _expand_numbers(text: str) -> str:
    text = _GROUPED_NUMBER_RE.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _CURRENCY_RE.sub(_expand_currency, text)
    text = _NUMBER_SIGN_RE.sub(
        lambda m: "number " + (_expand_identifier(m.group(1)) if m.group(1).isdigit() else m.group(1)), text)
    text = _LETTERS_DIGITS_RE.sub(lambda m: m.group(1) + " " + " ".join(_DIGIT_WORDS[int(d)] for d in m.group(2)), text)
    text = _PERCENT_RE.sub(r"\1 percent", text)  # before decimals, which would move the digit away from "%"
    text = _DECIMAL_RE.sub(_expand_decimal, text)
    text = _ORDINAL_RE.sub(_expand_ordinal, text)
    return _NUMBER_RE.sub(_expand_number, text)


def normalize_text(text: str) -> str:
    """keithito/tacotron ``english_cleaners``: ASCII, lower case, numbers and abbreviations spelled out, one space;
    plus what LJSpeech's transcripts need beyond them: regnal numerals, "No. 162", "&", letters glued to digits,
    currency amounts as cardinals (never as years).

    >>> normalize_text("Dr. Smith paid $3.50 on the 2nd of May, 1865.")
    'doctor smith paid three dollars, fifty cents on the second of may, eighteen sixty-five.'
    """
    text = _REGNAL_RE.sub(_expand_regnal, _to_ascii(text)).lower()
    text = _AMPERSAND_RE.sub(" and ", text)
    text = _expand_numbers(text)
    for pattern, expansion in _ABBREVIATIONS:
        text = pattern.sub(expansion, text)
    return _WHITESPACE_RE.sub(" ", text).strip()


class EncodedText(NamedTuple):
    """Symbol ids plus the characters ``encode`` could not map, with their counts."""

    ids: list[int]
    dropped: collections.Counter[str]


class SymbolTable:
    """Character vocabulary (keithito/tacotron ``symbols``): pad id 0, end-of-sequence id 1, then ``characters``."""

    def __init__(self, characters: str = DEFAULT_CHARACTERS) -> None:
        if not characters:
            raise ValueError("characters must not be empty")
        duplicates = sorted(ch for ch, n in collections.Counter(characters).items() if n > 1)
        if duplicates:
            raise ValueError(f"characters must be unique, but got duplicates {duplicates!r}")
        for reserved, name in ((PAD, "PAD"), (EOS, "EOS")):
            if reserved in characters:
                raise ValueError(f"characters must not contain the {name} symbol {reserved!r}, but got {characters!r}")
        self.characters = characters
        self.symbols = PAD + EOS + characters
        self._id_of = {symbol: i for i, symbol in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __repr__(self) -> str:
        return f"SymbolTable(characters={self.characters!r})"

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return 1

    def encode(self, text: str, *, normalize: bool = True, add_eos: bool = True) -> EncodedText:
        """Text -> ids (optionally ``normalize_text`` first, EOS appended); unknown characters are dropped and
        counted in ``dropped`` so callers can log or reject them. An empty string encodes to ``[eos_id]`` only
        (``[]`` without EOS); rejecting empty transcripts is the DataModule's call.
        """
        if normalize:
            text = normalize_text(text)
        ids: list[int] = []
        dropped: collections.Counter[str] = collections.Counter()
        for ch in text:
            symbol_id = self._id_of.get(ch)
            # PAD/EOS in the input are markup, not text: treat them as unknown rather than emit control ids
            if symbol_id is None or symbol_id < 2:
                dropped[ch] += 1
            else:
                ids.append(symbol_id)
        if add_eos:
            ids.append(self.eos_id)
        return EncodedText(ids, dropped)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Ids -> text, skipping pad and stopping at the first EOS; a 1-D sequence or tensor."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"ids must be 1-D, but got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        characters = []
        for symbol_id in ids:
            symbol_id = int(symbol_id)
            if not 0 <= symbol_id < len(self.symbols):
                raise ValueError(f"id {symbol_id} is outside the vocabulary of size {len(self.symbols)}")
            if symbol_id == self.eos_id:
                break
            if symbol_id != self.pad_id:
                characters.append(self.symbols[symbol_id])
        return "".join(characters)
