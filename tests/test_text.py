"""Tests for zoo.text: keithito-style English normalisation and the character symbol table."""

from __future__ import annotations

import collections

import pytest
import torch

from zoo.text import DEFAULT_CHARACTERS, EOS, PAD, EncodedText, SymbolTable, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Dr. Smith paid $3.50 on the 2nd of May, 1865.",
            "doctor smith paid three dollars, fifty cents on the second of may, eighteen sixty-five.",
        ),
        (
            (
                "Mrs. Jones, Jr. and Capt. Hook met Lt. Col. Gen. Maj. Sgt. Rev. Hon. Drs. Esq. at St. Paul's Co. "
                "Ltd. near Ft. Worth."
            ),
            (
                "misess jones, junior and captain hook met lieutenant colonel general major sergeant reverend "
                "honorable doctors esquire at saint paul's company limited near fort worth."
            ),
        ),
        ("Mr. Brown", "mister brown"),
        ("the 1st, 2nd, 3rd, 21st and 103rd", "the first, second, third, twenty-first and one hundred and third"),
        (
            "In 1905, 2008, 2000, 1900 and 2024.",
            "in nineteen oh five, two thousand eight, two thousand, nineteen hundred and twenty twenty-four.",
        ),
        ("1,000,000 people", "one million people"),
        ("12 or 100 or 3000 or 999", "twelve or one hundred or three thousand or nine hundred ninety-nine"),
        ("pi is 3.14 and 3.5", "pi is three point one four and three point five"),
        ("It cost £2, £1 or $1.", "it cost two pounds, one pound or one dollar."),
        (
            "$0.01, $0.99, $3.5 and £2.50",
            "one cent, ninety-nine cents, three dollars, fifty cents and two pounds, fifty pence",
        ),
        ("$1,000,000", "one million dollars"),
        ("50% more", "fifty percent more"),
        ("1,2,3", "one,two,three"),  # not a grouped number: not "one hundred twenty-three"
        ("Café “naïve” — Ærø", 'cafe "naive" - aero'),
        # LJSpeech's failure classes: letters glued to digits, "No.", "&", regnal numerals, currency never as years
        ("Commission Exhibit No. C2766.", "commission exhibit number c two seven six six."),
        ("Exhibit No. 162 and No. 7", "exhibit number one sixty-two and number seven"),
        ("No. 100, no. 1005", "number one hundred, number ten oh five"),
        ("Smith & Co. & sons", "smith and company and sons"),
        ("George III, Charles I. and Henry VIII", "george the third, charles the first. and henry the eighth"),
        ("Then I went to see Louis XIV", "then i went to see louis the fourteenth"),
        ("after World War II", "after world war two"),
        ("£2372 and $1865.50", "two thousand, three hundred seventy-two pounds and one thousand, eight hundred sixty-five dollars, fifty cents"),
        ("  lots   of\tspace\n ", "lots of space"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_keeps_unknown_scripts_for_the_encoder_to_count() -> None:
    assert normalize_text("Hello 世界 #1") == "hello 世界 #one"


def test_symbol_table_layout() -> None:
    table = SymbolTable()
    assert (table.pad_id, table.eos_id) == (0, 1)
    assert len(table) == 2 + len(DEFAULT_CHARACTERS) == 40
    assert table.symbols[:2] == PAD + EOS
    assert table.encode("a", add_eos=False).ids == [2]


def test_round_trip_of_normalised_text() -> None:
    table = SymbolTable()
    text = normalize_text('Dr. Smith said: "It\'s (almost) 4:30; hurry -- now!" Is it? Yes.')
    encoded = table.encode(text, normalize=False)
    assert isinstance(encoded, EncodedText)
    assert encoded.ids[-1] == table.eos_id and table.pad_id not in encoded.ids
    assert encoded.dropped == collections.Counter()
    assert table.decode(encoded.ids) == text
    assert table.decode(table.encode(text).ids) == text  # normalising twice changes nothing


def test_unknown_characters_are_dropped_and_counted() -> None:
    table = SymbolTable()
    encoded = table.encode("a#b@@c 中文 ~_", add_eos=False)
    assert table.decode(encoded.ids) == "abc  "
    assert encoded.dropped == collections.Counter({"#": 1, "@": 2, "中": 1, "文": 1, "~": 1, "_": 1})
    # without normalisation upper case is unknown too
    assert table.encode("Ab", normalize=False).dropped == collections.Counter({"A": 1})


def test_empty_text_is_only_eos() -> None:
    table = SymbolTable()
    assert table.encode("") == EncodedText([table.eos_id], collections.Counter())
    assert table.encode("", add_eos=False).ids == []


def test_decode_skips_padding_and_stops_at_eos() -> None:
    table = SymbolTable()
    ids = table.encode("hi there").ids
    padded = torch.tensor(ids + [table.pad_id] * 5)
    assert table.decode(padded) == "hi there"
    assert table.decode([table.pad_id, *ids[:2], table.eos_id, *ids[2:]]) == "hi"
    with pytest.raises(ValueError, match="40"):
        table.decode([40])
    with pytest.raises(ValueError, match="1-D"):
        table.decode(padded[None])


def test_custom_characters_are_validated() -> None:
    assert len(SymbolTable("ab ")) == 5
    with pytest.raises(ValueError, match="duplicates"):
        SymbolTable("abca")
    with pytest.raises(ValueError, match="PAD"):
        SymbolTable("ab_")
    with pytest.raises(ValueError, match="EOS"):
        SymbolTable("ab~")
