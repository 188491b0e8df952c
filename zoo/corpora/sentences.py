"""Seeded template grammar of English sentences: the text of the embedded LJSpeech and CMU ARCTIC corpora.

Only ``random.Random(seed)`` drives the choices and every vocabulary is an ordered tuple, so a seed gives
the same sentences on every machine and Python version. Sentences are past-tense narration like
LJSpeech, with years, counts, "Mr."/"Dr."/"St." and quotations sprinkled in for the text normaliser.
"""

from __future__ import annotations

import random

__all__ = ["english_sentences"]

# ---------------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------------

PERSONS = (
    "clerk", "prisoner", "doctor", "magistrate", "sheriff", "soldier", "merchant", "servant", "governor",
    "warden", "sailor", "farmer", "widow", "stranger", "officer", "witness", "lawyer", "printer", "carpenter",
    "teacher", "student", "traveler", "baker", "banker", "judge", "jailer", "chaplain", "constable",
    "inspector", "surgeon", "coachman", "messenger", "visitor", "captain", "neighbor", "landlord", "gardener",
    "engineer", "nurse", "secretary", "guard", "driver", "reporter", "agent", "man", "woman", "child",
    "boy", "girl", "thief", "author", "editor", "architect", "auctioneer", "usher", "innkeeper", "physician",
)  # fmt: skip
THINGS = (
    "letter", "box", "door", "window", "book", "lamp", "coat", "key", "table", "chair", "carriage", "wagon",
    "horse", "dog", "bell", "clock", "map", "ledger", "candle", "rope", "basket", "bottle", "lantern",
    "newspaper", "pamphlet", "rifle", "pistol", "package", "envelope", "coin", "purse", "ring", "photograph",
    "portrait", "message", "telegram", "warrant", "record", "document", "parcel", "trunk", "cart", "engine",
    "ticket", "umbrella", "hat", "glove", "knife", "notebook", "drawer", "cabinet", "blanket", "kettle",
    "mirror", "painting", "sketch", "ladder", "barrel", "wheel", "saddle", "shovel", "hammer", "pencil",
    "invoice", "almanac", "anchor", "apron", "oar", "inkstand", "overcoat", "instrument", "account",
)  # fmt: skip
PLACE_NOUNS = (
    "station", "harbor", "square", "market", "church", "prison", "courthouse", "library", "garden", "cottage",
    "hotel", "inn", "bank", "office", "factory", "mill", "farm", "village", "cemetery", "hospital",
    "warehouse", "chapel", "barracks", "theater", "museum", "tavern", "kitchen", "cellar", "attic", "hall",
    "corridor", "yard", "bridge", "river", "forest", "hill", "valley", "road", "street", "lane", "shore",
    "pier", "palace", "cathedral", "school", "college", "castle", "orchard", "abbey", "embassy",
)  # fmt: skip
PLACE_NAMES = (
    "London", "Paris", "Boston", "Dallas", "Chicago", "Washington", "New York", "Philadelphia", "New Orleans",
    "Liverpool", "Edinburgh", "Dublin", "Bristol", "Manchester", "Oxford", "Cambridge", "Newgate",
    "Westminster", "Baltimore", "Richmond", "Texas", "Ohio", "Virginia", "Kent", "Yorkshire", "Cornwall",
    "Canada", "Mexico", "France", "Italy", "Spain", "Holland", "Glasgow", "Southwark", "Old Bailey",
    "St. Louis", "St. Petersburg", "St. Giles", "St. Paul's Cathedral", "St. James's Park",
    "St. Thomas's Hospital", "Fleet Street", "Baker Street", "Elm Street", "the Thames", "the Mississippi",
)  # fmt: skip
ADJECTIVES = (
    "old", "young", "small", "large", "quiet", "narrow", "dark", "bright", "heavy", "empty", "ancient",
    "famous", "careful", "strange", "cold", "warm", "wet", "dry", "broken", "crowded", "silent", "distant",
    "hidden", "wooden", "iron", "stone", "yellow", "grey", "white", "black", "red", "green", "blue", "brown",
    "pale", "tired", "honest", "curious", "nervous", "patient", "anxious", "elderly", "eager", "angry",
    "wealthy", "poor", "busy", "lonely", "gentle", "rough", "crooked", "secret", "official", "simple",
    "plain", "ordinary", "unusual", "enormous", "tiny", "ragged", "faded", "polished", "rusty", "muddy",
    "dusty", "shabby", "elegant", "modest", "steady", "grim", "cheerful", "weary", "handsome", "clever",
    "foolish", "stubborn", "loyal", "solemn", "frightened", "restless", "valuable", "useless", "familiar",
    "peculiar", "remarkable", "splendid", "miserable", "respectable", "notorious", "obscure", "heavy",
)  # fmt: skip
PREDICATE_ADJECTIVES = (
    "empty", "locked", "broken", "silent", "crowded", "ready", "missing", "finished", "open", "closed",
    "correct", "false", "genuine", "dangerous", "useless", "safe", "wet", "cold", "quiet", "late", "afraid",
    "tired", "certain", "innocent", "guilty", "alone", "calm", "furious", "delighted", "puzzled", "ill",
)  # fmt: skip
ADVERBS = (
    "slowly", "quickly", "quietly", "carefully", "suddenly", "eventually", "immediately", "patiently",
    "nervously", "calmly", "loudly", "softly", "gravely", "reluctantly", "cheerfully", "firmly", "briefly",
    "silently", "anxiously", "steadily", "gently", "hastily", "openly", "secretly", "promptly",
    "deliberately", "wearily", "boldly", "politely", "curiously", "sharply", "finally", "never again",
)  # fmt: skip
SENTENCE_ADVERBS = (
    "Fortunately", "Meanwhile", "However", "Afterwards", "Nevertheless", "At last", "Of course", "Indeed",
    "Unfortunately", "Later", "Strangely enough", "In the end", "For a moment", "Even so", "Naturally",
    "Without a word", "As usual", "In any case", "Oddly", "Curiously",
)  # fmt: skip
TIMES = (
    "in the morning", "on the following day", "at dawn", "late that night", "on Monday", "on Sunday",
    "before noon", "during the trial", "three days later", "after a long silence", "by the end of the week",
    "a few minutes later", "that evening", "in the spring", "in the autumn", "the next morning",
    "shortly after midnight", "during the winter", "before the war", "after the funeral", "at sunset",
    "on Christmas Eve", "within an hour", "early in the afternoon",
)  # fmt: skip
PREPOSITIONS = (
    "in", "at", "near", "outside", "behind", "across", "beside", "beyond", "inside", "opposite", "towards",
    "along", "past", "around", "under",
)  # fmt: skip
TITLES = ("Mr.", "Mrs.", "Dr.", "Mr.", "Dr.", "Captain", "Colonel", "Professor", "Sir", "Miss", "Judge")
MALE_NAMES = (
    "John", "William", "Thomas", "James", "George", "Henry", "Charles", "Robert", "Edward", "Samuel",
    "Arthur", "Walter", "Frederick", "Joseph", "Richard", "Francis", "Hugh", "Albert", "Lewis", "Philip",
)  # fmt: skip
FEMALE_NAMES = (
    "Mary", "Elizabeth", "Sarah", "Anne", "Margaret", "Alice", "Emily", "Jane", "Lucy", "Harriet",
    "Clara", "Edith", "Agnes", "Martha", "Helen", "Eleanor", "Rose", "Florence", "Louisa", "Catherine",
)  # fmt: skip
FIRST_NAMES = MALE_NAMES + FEMALE_NAMES
SURNAMES = (
    "Harrison", "Whitfield", "Clarke", "Morgan", "Fletcher", "Bennett", "Hughes", "Palmer", "Marsh", "Turner",
    "Baxter", "Cooper", "Foster", "Griffin", "Hale", "Jennings", "Knight", "Lawson", "Mercer", "Norton",
    "Osborne", "Parker", "Quincy", "Russell", "Sanders", "Thornton", "Underwood", "Vaughan", "Walsh",
    "Yates", "Ashford", "Blake", "Carver", "Dawson", "Ellis", "Fairfax", "Gardner", "Holloway", "Irving",
    "Kemble", "Lambert", "Mortimer", "Nash", "Oakley", "Pemberton", "Reeve", "Stanhope", "Tolliver",
)  # fmt: skip

# (base, past) pairs; questions need the base form, narration the past.
VERBS_THING = (
    ("open", "opened"), ("close", "closed"), ("carry", "carried"), ("sign", "signed"), ("seal", "sealed"),
    ("hide", "hid"), ("deliver", "delivered"), ("sell", "sold"), ("buy", "bought"), ("repair", "repaired"),
    ("paint", "painted"), ("unlock", "unlocked"), ("lock", "locked"), ("wrap", "wrapped"), ("fold", "folded"),
    ("copy", "copied"), ("load", "loaded"), ("weigh", "weighed"), ("mend", "mended"), ("drop", "dropped"),
    ("lift", "lifted"), ("fetch", "fetched"), ("send", "sent"), ("receive", "received"), ("steal", "stole"),
    ("burn", "burned"), ("break", "broke"), ("borrow", "borrowed"), ("return", "returned"), ("read", "read"),
    ("polish", "polished"), ("bury", "buried"), ("sketch", "sketched"), ("pack", "packed"),
)  # fmt: skip
VERBS_PERSON = (
    ("thank", "thanked"), ("warn", "warned"), ("question", "questioned"), ("accuse", "accused"),
    ("arrest", "arrested"), ("release", "released"), ("defend", "defended"), ("meet", "met"), ("call", "called"),
    ("greet", "greeted"), ("pay", "paid"), ("hire", "hired"), ("dismiss", "dismissed"), ("visit", "visited"),
    ("trust", "trusted"), ("interview", "interviewed"), ("forgive", "forgave"), ("rescue", "rescued"),
    ("summon", "summoned"), ("invite", "invited"), ("introduce", "introduced"), ("obey", "obeyed"),
)  # fmt: skip
VERBS_ANY = (
    ("examine", "examined"), ("find", "found"), ("lose", "lost"), ("bring", "brought"), ("take", "took"),
    ("watch", "watched"), ("follow", "followed"), ("describe", "described"), ("remember", "remembered"),
    ("forget", "forgot"), ("discover", "discovered"), ("notice", "noticed"), ("mention", "mentioned"),
    ("ignore", "ignored"), ("admire", "admired"), ("recognize", "recognized"), ("photograph", "photographed"),
    ("study", "studied"), ("guard", "guarded"), ("inspect", "inspected"), ("see", "saw"), ("hear", "heard"),
)  # fmt: skip
VERBS_PLACE = (
    ("leave", "left"), ("enter", "entered"), ("cross", "crossed"), ("approach", "approached"),
    ("reach", "reached"), ("search", "searched"), ("visit", "visited"), ("guard", "guarded"),
    ("describe", "described"), ("clean", "cleaned"), ("watch", "watched"), ("explore", "explored"),
)  # fmt: skip
VERBS_INTRANSITIVE = (
    ("arrive", "arrived"), ("wait", "waited"), ("sleep", "slept"), ("speak", "spoke"), ("laugh", "laughed"),
    ("hesitate", "hesitated"), ("return", "returned"), ("disappear", "disappeared"), ("smile", "smiled"),
    ("shout", "shouted"), ("listen", "listened"), ("rest", "rested"), ("work", "worked"), ("pray", "prayed"),
    ("sing", "sang"), ("fall", "fell"), ("travel", "traveled"), ("walk", "walked"), ("run", "ran"),
    ("stay", "stayed"), ("complain", "complained"), ("agree", "agreed"), ("recover", "recovered"),
    ("escape", "escaped"), ("fail", "failed"), ("sit down", "sat down"), ("stand up", "stood up"),
    ("kneel", "knelt"), ("weep", "wept"), ("nod", "nodded"), ("sigh", "sighed"), ("tremble", "trembled"),
    ("hurry", "hurried"), ("vanish", "vanished"), ("insist", "insisted"), ("linger", "lingered"),
    ("collapse", "collapsed"), ("wander", "wandered"), ("confess", "confessed"), ("testify", "testified"),
)  # fmt: skip
SPEECH_VERBS = ("said", "replied", "declared", "whispered", "answered", "remarked", "cried", "explained", "added")
CONJUNCTIONS = (", and ", ", and ", ", but ", ", but ", ", so ", ", yet ", ", while ", ", although ", "; ")
INTERJECTIONS = ("Alas", "Good heavens", "Indeed", "Well", "Look", "Oh", "Listen")
QUESTION_WORDS = ("Why", "When", "How", "Where")

_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "thief": "thieves", "knife": "knives",
    "widow": "widows", "box": "boxes", "church": "churches", "coach": "coaches", "inn": "inns",
    "barracks": "barracks",
}  # fmt: skip
# Vowel letters that do not begin with a vowel sound, and the reverse.
_SHORT_KEEP_PROBABILITY = 0.3
_PRONOUNS = ("he", "she", "they", "he", "she", "we", "I")
_A_BEFORE_VOWEL = ("useless", "useful", "uniform", "university", "unique", "usual", "usher", "one", "european")
_AN_BEFORE_CONSONANT = ("honest", "hour", "heir", "honorable")


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _article(word: str) -> str:
    first = word.split()[0].lower()
    if first in _AN_BEFORE_CONSONANT:
        return "an"
    if first in _A_BEFORE_VOWEL:
        return "a"
    return "an" if first[0] in "aeiou" else "a"


def _capitalize(text: str) -> str:
    """Upper-case the first letter, looking past an opening quote but not past a leading number."""
    i = 1 if text.startswith('"') else 0
    return text[:i] + text[i : i + 1].upper() + text[i + 1 :]


# ---------------------------------------------------------------------------------------------------------
# Grammar: each rule takes the shared rng and returns a string (and, for subjects, whether it is plural).
# ---------------------------------------------------------------------------------------------------------


class _Grammar:
    """Recursive template grammar over the vocabulary; every choice goes through one ``random.Random``."""

    def __init__(self, rng: random.Random, allow_quotes: bool) -> None:
        self.rng = rng
        self.allow_quotes = allow_quotes

    def p(self, probability: float) -> bool:
        return self.rng.random() < probability

    def pick(self, options):
        return options[self.rng.randrange(len(options))]

    # --- numbers ------------------------------------------------------------------------------------------
    def year(self) -> str:
        # LJSpeech narrates 1800s prisons and the 1963 Warren Commission.
        return str(self.rng.randrange(1800, 1900) if self.p(0.8) else self.rng.randrange(1900, 1964))

    def count(self) -> str:
        return str(self.rng.randrange(2, 100) if self.p(0.85) else self.rng.randrange(100, 1000))

    # --- noun phrases -------------------------------------------------------------------------------------
    def name(self) -> str:
        r = self.rng.random()
        if r < 0.55:
            title = self.pick(TITLES)
            if title == "Sir":
                return f"Sir {self.pick(MALE_NAMES)} {self.pick(SURNAMES)}"
            return f"{title} {self.pick(SURNAMES)}"
        if r < 0.85:
            return f"{self.pick(FIRST_NAMES)} {self.pick(SURNAMES)}"
        return self.pick(FIRST_NAMES)

    def modified(self, noun: str, adjective_p: float = 0.45) -> str:
        if self.p(adjective_p):
            noun = f"{self.pick(ADJECTIVES)} {noun}"
            if self.p(0.08):
                noun = f"{self.pick(ADJECTIVES)}, {noun}"
        return noun

    def determined(self, noun: str) -> str:
        r = self.rng.random()
        if r < 0.55:
            return f"the {noun}"
        if r < 0.8:
            return f"{_article(noun)} {noun}"
        return f"{self.pick(('his', 'her', 'their', 'that', 'this', 'every'))} {noun}"

    def person(self) -> tuple[str, bool]:
        """A person noun phrase and whether it is plural."""
        r = self.rng.random()
        if r < 0.35:
            return self.name(), False
        if r < 0.4:
            return f"{self.count()} {_plural(self.pick(PERSONS))}", True
        if r < 0.5:
            return f"the {_plural(self.modified(self.pick(PERSONS), 0.3))}", True
        phrase = self.determined(self.modified(self.pick(PERSONS)))
        if self.p(0.12):
            phrase += f" from {self.pick(PLACE_NAMES)}"
        return phrase, False

    def subject(self) -> tuple[str, bool]:
        if self.p(0.2):
            pronoun = self.pick(_PRONOUNS)
            return pronoun, pronoun in ("they", "we")
        return self.person()

    def thing(self) -> str:
        if self.p(0.04):
            return f"{self.count()} {_plural(self.pick(THINGS))}"
        phrase = self.determined(self.modified(self.pick(THINGS)))
        if self.p(0.1):
            phrase += f" of {self.name()}"
        return phrase

    def place(self) -> str:
        if self.p(0.4):
            return self.pick(PLACE_NAMES)
        return f"the {self.modified(self.pick(PLACE_NOUNS), 0.35)}"

    def prepositional(self) -> str:
        return f"{self.pick(PREPOSITIONS)} {self.place()}"

    def time(self) -> str:
        r = self.rng.random()
        if r < 0.12:
            return f"in {self.year()}"
        if r < 0.17:
            return f"in the {self.pick(('spring', 'summer', 'autumn', 'winter'))} of {self.year()}"
        if r < 0.2:
            return f"at {self.rng.randrange(1, 13)} o'clock"
        return self.pick(TIMES)

    # --- verb phrases -------------------------------------------------------------------------------------
    def verb_phrase(self, plural: bool, base: bool = False) -> str:
        """Past-tense (or, for questions, base-form) predicate."""
        form = 0 if base else 1
        r = self.rng.random()
        if r < 0.22:
            verb = self.pick(VERBS_THING)[form]
            phrase = f"{verb} {self.thing()}"
        elif r < 0.38:
            verb = self.pick(VERBS_PERSON)[form]
            phrase = f"{verb} {self.person()[0]}"
        elif r < 0.54:
            verb = self.pick(VERBS_ANY)[form]
            phrase = f"{verb} {self.thing() if self.p(0.5) else self.person()[0]}"
        elif r < 0.66:
            verb = self.pick(VERBS_PLACE)[form]
            phrase = f"{verb} {self.place()}"
        elif r < 0.88 or base:
            phrase = self.pick(VERBS_INTRANSITIVE)[form]
        else:
            be = "were" if plural else "was"
            phrase = f"{be} {self.pick(PREDICATE_ADJECTIVES)}"
            if self.p(0.3):
                phrase = f"{be} {self.pick(('quite', 'very', 'rather', 'not', 'almost'))} {phrase.split()[-1]}"
            return phrase
        if self.p(0.3):
            adverb = self.pick(ADVERBS)
            if " " not in phrase and self.p(0.5) and adverb != "never again":
                phrase = f"{adverb} {phrase}"
            else:
                phrase = f"{phrase} {adverb}"
        if self.p(0.35):
            phrase += f" {self.prepositional()}"
        if self.p(0.15):
            phrase += f" {self.time()}"
        return phrase

    def clause(self) -> str:
        subject, plural = self.subject()
        if self.p(0.12) and subject not in _PRONOUNS:
            # Relative clause on a person: "the clerk, who waited near the gate, opened the box"
            return f"{subject}, who {self.verb_phrase(plural)}, {self.verb_phrase(plural)}"
        phrase = f"{subject} {self.verb_phrase(plural)}"
        if self.p(0.1):
            phrase += f", which {self.pick(('was', 'seemed', 'proved'))} {self.pick(PREDICATE_ADJECTIVES)}"
        return phrase

    # --- sentences ----------------------------------------------------------------------------------------
    def statement(self) -> str:
        text = self.clause()
        n_more = 0 if self.p(0.35) else (1 if self.p(0.75) else 2)
        for _ in range(n_more):
            text += self.pick(CONJUNCTIONS) + self.clause()
        r = self.rng.random()
        if r < 0.22:
            text = f"{_capitalize(self.time())}, {text}"
        elif r < 0.36:
            text = f"{self.pick(SENTENCE_ADVERBS)}, {text}"
        elif r < 0.39:
            text = f"{self.count()} {_plural(self.pick(PERSONS))} {self.verb_phrase(True)}"
        return text + "."

    def question(self) -> str:
        subject, plural = self.subject()
        r = self.rng.random()
        if r < 0.35:
            text = f"did {subject} {self.verb_phrase(plural, base=True)}"
        elif r < 0.65:
            text = f"{self.pick(QUESTION_WORDS).lower()} did {subject} {self.verb_phrase(plural, base=True)}"
        elif r < 0.85:
            text = f"who {self.verb_phrase(False)}"
        else:
            text = f"{'were' if plural else 'was'} {subject} {self.pick(PREDICATE_ADJECTIVES)}"
        return text + "?"

    def exclamation(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            adjective, noun = self.pick(ADJECTIVES), self.pick(THINGS + PLACE_NOUNS)
            return f"how {adjective} the {noun} {self.pick(('was', 'looked', 'seemed'))}!"
        if r < 0.6:
            noun = self.modified(self.pick(THINGS + PERSONS + PLACE_NOUNS), 1.0)
            return f"what {_article(noun)} {noun} it was!"
        return f"{self.pick(INTERJECTIONS)}, {self.clause()}!"

    def quotation(self) -> str:
        inner = self.question() if self.p(0.25) else self.clause() + self.pick((".", ".", "!"))
        speaker = self.name() if self.p(0.6) else f"the {self.pick(PERSONS)}"
        verb = "asked" if inner.endswith("?") else self.pick(SPEECH_VERBS)
        if self.p(0.5):
            return f'{_capitalize(speaker)} {verb}, "{_capitalize(inner)}"'
        if inner.endswith("."):
            inner = inner[:-1] + ","
        return f'"{_capitalize(inner)}" {verb} {speaker}.'

    def sentence(self) -> str:
        r = self.rng.random()
        if r < 0.76:
            text = self.statement()
        elif r < 0.86:
            text = self.question()
        elif r < 0.93:
            text = self.exclamation()
        elif self.allow_quotes:
            text = self.quotation()
        else:
            text = self.statement()
        return _capitalize(text)


def draw_sentences(n: int, seed: int, min_chars: int, max_chars: int, allow_quotes: bool) -> list[str]:
    """Draw ``n`` distinct grammar sentences whose length lies in [min_chars, max_chars]."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, but got {n!r}")
    if not isinstance(seed, int):
        raise ValueError(f"seed must be an int, but got {seed!r}")
    if min_chars < 1 or max_chars < min_chars + 10:
        raise ValueError(f"need 1 <= min_chars and min_chars + 10 <= max_chars, but got {min_chars}, {max_chars}")
    rng = random.Random(seed)
    grammar = _Grammar(rng, allow_quotes)
    # The grammar alone yields many short sentences; thinning the bottom fifth of the window gives
    # LJSpeech's spread (few under ~50 characters, most between 60 and 130).
    short = min_chars + (max_chars - min_chars) // 5
    sentences: list[str] = []
    seen: set[str] = set()
    # Generous budget: narrow length windows reject most draws, yet the grammar's space is astronomically large.
    for _ in range(1000 + 500 * n):
        if len(sentences) == n:
            return sentences
        text = grammar.sentence()
        if not min_chars <= len(text) <= max_chars or text in seen:
            continue
        if len(text) < short and rng.random() > _SHORT_KEEP_PROBABILITY:
            continue
        seen.add(text)
        sentences.append(text)
    if len(sentences) == n:
        return sentences
    raise ValueError(f"could not draw {n} distinct sentences of {min_chars}..{max_chars} characters")


def english_sentences(n: int, seed: int = 0, min_chars: int = 20, max_chars: int = 180) -> list[str]:
    """``n`` distinct, seeded, grammatical-looking English sentences with an LJSpeech-like length spread."""
    return draw_sentences(n, seed, min_chars, max_chars, allow_quotes=True)
