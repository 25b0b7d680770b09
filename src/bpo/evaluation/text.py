"""Reading free text back into SceneWorld facts, with the world's lexicon (``bpo.world.vocab``) only.

Every judge reads responses through this module, so "what a response claims" has one definition.

Tokens. Text is lower-cased and split into word tokens, digits and the symbols ``+ = ,``; ``.!?;``
and line breaks end a sentence. "n't" is read as "not" ("isn't" -> "is not"). A token inside
double quotes is *literal*: it is text being cited (a sign reading "NO DOGS"), so it never names an
object, an attribute or a negation. Numbers inside quotes still count as numbers (a sign reading
"42"). A quote ends at its closing mark or at the end of its sentence, whichever comes first: an
unclosed quote ('The sign says "STOP. There is a dog.') hides nothing after its sentence, and a
quote over several sentences is literal in its first one only (sign text is short).

Object mentions. Two-word names are matched before one-word names ("teddy bear" is not "bear",
"traffic light" is not "light"); plurals and synonyms, and regular plurals of synonyms, map to the
canonical noun ("people" -> person, "puppies" -> dog, "lorries" -> truck).

Attributes. Each attribute word is attached to one mention of the same sentence:
- a colour or count word directly before a noun phrase belongs to it: only modifier words may lie
  between ("two bright red cars"; "a pair of dogs" counts 2);
- a count needs that direct link: "a"/"an"/"one" elsewhere ("one of the dogs") is no count, and
  "no"/"zero" are negations, not a count of 0;
- any other colour or position word attaches to the nearest mention in its sentence (distance in
  tokens); on a tie it takes the mention before it, because English puts predicates and place
  phrases after the noun ("the car is red", "a car on the left and a bus on the right").
  Where one mention collects several words of one kind, the nearest wins.

Negation. A cue ("no", "not", "never", "without", "none", "neither", "nor", "cannot", "zero")
negates the object mentions that follow it as long as only function words ("there is", "i do not
see any", "a", "the", ...) or a list of mentions ("no dogs, cats or birds") lie between; any other
word ends its scope ("there is no sign, and a dog ..." leaves the dog alone). Negation matters for
yes/no answers and for fact extraction; CHAIR ignores it (see ``mentioned_objects``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bpo.world import vocab


def pluralise(noun: str) -> str:
    """A regular English plural of the last word: coach -> coaches, lorry -> lorries, bike -> bikes."""
    head, _, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}".strip()


def _build_lexicon() -> dict[tuple[str, ...], tuple[str, bool]]:
    """word tuple -> (canonical name, is_plural), from vocab, so judges and templates agree.

    vocab lists some synonyms' plurals ("puppies") but not all ("automobile", "lorry"); a regular
    plural is added for each synonym that lacks one, unless that word already names something."""
    lexicon: dict[tuple[str, ...], tuple[str, bool]] = {}
    for info in vocab.OBJECTS.values():
        singular = (info.name, *info.synonyms)
        plurals = {info.plural} | {pluralise(w) for w in singular}
        for word in (info.name, info.plural, *info.synonyms):
            lexicon[tuple(word.split())] = (info.name, word in plurals and word != info.name)
    for info in vocab.OBJECTS.values():
        for word in info.synonyms:
            lexicon.setdefault(tuple(pluralise(word).split()), (info.name, True))
    return lexicon


_LEXICON = _build_lexicon()
_MAX_NAME_WORDS = max(len(k) for k in _LEXICON)

COLOUR_WORDS: dict[str, str] = {**{c: c for c in vocab.COLOURS}, **vocab.COLOUR_SYNONYMS}
# Places and a few common words for them (vocab has none; a response may say "harbor" or "woods").
PLACE_WORDS: dict[str, str] = {
    **{p: p for p in vocab.PLACES},
    "harbor": "harbour", "port": "harbour", "marina": "harbour", "road": "street",
    "seaside": "beach", "shore": "beach", "woods": "forest",
}
# Count words: vocab's number words minus the ones that mean "none" (those are negation cues here).
COUNT_WORDS: dict[str, int] = {w: n for w, n in vocab.NUMBER_WORDS.items() if n > 0}
# Numerals a response states outright; "a"/"an"/"single"/"pair" only count before a noun phrase.
_NUMERALS: dict[str, int] = {w: n for w, n in vocab.NUMBER_WORDS.items() if w not in ("a", "an", "no", "single", "pair")}
# Words that may sit between a count or colour and its noun ("two small red cars").
MODIFIERS: frozenset[str] = frozenset(COLOUR_WORDS) | {
    "small", "large", "big", "little", "tiny", "huge", "bright", "dark", "light", "pale", "single",
    "young", "old", "cute", "fluffy", "shiny",
}
NEGATION_CUES: frozenset[str] = frozenset({"no", "not", "never", "without", "none", "neither", "nor", "cannot", "zero"})
# Words a negation's scope may cross on its way to the nouns it negates.
_NEGATION_SKIP: frozenset[str] = MODIFIERS | frozenset(COUNT_WORDS) | {
    "a", "an", "any", "the", "other", "of", "there", "is", "are", "was", "were", "be", "been", "being",
    "i", "we", "you", "can", "could", "do", "does", "did", "see", "seen", "find", "notice", "spot",
    "appear", "appears", "seem", "seems", "to", "think", "believe", "visible", "present", "also",
    "really", "actually", "even", "more", "such", "as", "s", "t",
} | NEGATION_CUES
_CONJUNCTIONS = frozenset({"and", "or", "nor", ","})
YES_NO = ("yes", "no")

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[+=,]|[.!?;\n]")
# A quotation: an opening mark, then text up to the closing mark or the end of the sentence,
# whichever comes first, so an unclosed quote cannot hide the sentences after it. Sentence
# punctuation directly followed by a closing mark ('"OPEN."') takes that mark along. A straight '"'
# right after a letter, digit or , . ! ? ; closes a quote and never opens one: otherwise the closer
# of '"NO DOGS. KEEP OUT."' (cut short at "DOGS.") would open a quote over the next sentence.
_QUOTED = re.compile(r'(?<![\w.,!?;])"[^"\n.!?;]*(?:"|[.!?;]+"?)?|“[^”\n.!?;]*(?:”|[.!?;]+”?)?')
_SENTENCE_END = frozenset(".!?;\n")


@dataclass(frozen=True)
class Token:
    text: str  # lower-cased
    sentence: int
    literal: bool  # inside double quotes: text being cited (a sign), not the response's own words


@dataclass(frozen=True)
class Mention:
    """One mention of an object in a response. ``start``/``end`` index the token list."""

    name: str  # canonical object name
    surface: str  # the words as written (lower-cased)
    sentence: int
    start: int
    end: int  # exclusive
    plural: bool  # a plural form: vocab's plural, or a regular plural of the name or a synonym
    negated: bool = False
    colour: str | None = None
    count: int | None = None
    row: str | None = None
    col: str | None = None


def tokenize(text: str) -> list[Token]:
    """Lower-cased tokens with sentence numbers and the literal flag (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    text = text.replace("’", "'").replace("n't", " not").replace("N'T", " NOT")
    quoted = [m.span() for m in _QUOTED.finditer(text)]
    tokens, sentence = [], 0
    for m in _TOKEN.finditer(text):
        raw = m.group()
        if raw in _SENTENCE_END:
            sentence += 1
            continue
        tokens.append(Token(raw.lower(), sentence, any(a < m.start() < b for a, b in quoted)))
    return tokens


def _match_objects(tokens: list[Token]) -> list[tuple[int, int, str, bool]]:
    """(start, end, name, plural) of every object name, longest names first, left to right."""
    found, i = [], 0
    while i < len(tokens):
        for width in range(_MAX_NAME_WORDS, 0, -1):
            span = tokens[i:i + width]
            if len(span) < width or any(t.literal for t in span) or len({t.sentence for t in span}) > 1:
                continue
            hit = _LEXICON.get(tuple(t.text for t in span))
            if hit:
                found.append((i, i + width, hit[0], hit[1]))
                i += width
                break
        else:
            i += 1
    return found


def _chain_target(tokens: list[Token], i: int, starts: dict[int, int], allow_of: bool = False) -> int | None:
    """Index (into mentions) of the noun phrase that token ``i`` directly modifies, if any."""
    j = i + 1
    if allow_of and j < len(tokens) and tokens[j].text == "of":
        j += 1
    while j < len(tokens) and tokens[j].sentence == tokens[i].sentence:
        if j in starts:
            return starts[j]
        if tokens[j].literal or tokens[j].text not in MODIFIERS:
            return None
        j += 1
    return None


def _nearest(spans: list[tuple[int, int, str, bool]], i: int, sentence: int, tokens: list[Token]) -> int | None:
    """Mention nearest to token ``i`` in its sentence; ties go to the mention before it."""
    best, best_key = None, None
    for k, (s, e, _, _) in enumerate(spans):
        if tokens[s].sentence != sentence:
            continue
        before = e <= i
        dist = i - e + 1 if before else s - i
        key = (dist, 0 if before else 1)
        if best_key is None or key < best_key:
            best, best_key = k, key
    return best


def _negated(tokens: list[Token], spans: list[tuple[int, int, str, bool]]) -> set[int]:
    starts = {s: k for k, (s, _, _, _) in enumerate(spans)}
    negated: set[int] = set()
    for i, t in enumerate(tokens):
        if t.literal or t.text not in NEGATION_CUES:
            continue
        j, after_mention = i + 1, False
        while j < len(tokens) and tokens[j].sentence == t.sentence and not tokens[j].literal:
            if j in starts:
                negated.add(starts[j])
                j, after_mention = spans[starts[j]][1], True
                continue
            word = tokens[j].text
            if word in _CONJUNCTIONS:
                if not after_mention and word == ",":
                    break  # "No, there is a dog": the comma closes the cue's clause
            elif word in _NEGATION_SKIP:
                after_mention = False
            else:
                break
            j += 1
    return negated


def extract_mentions(text: str) -> list[Mention]:
    """Every object mention in ``text`` with its negation flag and attached attributes."""
    tokens = tokenize(text)
    spans = _match_objects(tokens)
    starts = {s: k for k, (s, _, _, _) in enumerate(spans)}
    inside = {j for s, e, _, _ in spans for j in range(s, e)}
    # attribute -> mention index -> list of (distance, value); nearest wins later
    attached: dict[str, dict[int, list[tuple[int, object]]]] = {a: {} for a in ("colour", "count", "row", "col")}

    def attach(kind: str, k: int | None, i: int, value) -> None:
        if k is not None:
            s, e = spans[k][0], spans[k][1]
            dist = s - i if i < s else i - e + 1
            attached[kind].setdefault(k, []).append((dist, value))

    for i, t in enumerate(tokens):
        if t.literal or i in inside:
            continue
        w = t.text
        if w in COLOUR_WORDS:
            k = _chain_target(tokens, i, starts)
            attach("colour", k if k is not None else _nearest(spans, i, t.sentence, tokens), i, COLOUR_WORDS[w])
        elif w.isdigit() or w in COUNT_WORDS:
            n = int(w) if w.isdigit() else COUNT_WORDS[w]
            if n > 0:
                attach("count", _chain_target(tokens, i, starts, allow_of=(w == "pair")), i, n)
        elif w in vocab.POSITION_WORDS:
            where = vocab.POSITION_WORDS[w]
            attach("row" if where in vocab.ROWS else "col", _nearest(spans, i, t.sentence, tokens), i, where)

    negated = _negated(tokens, spans)
    mentions = []
    for k, (s, e, name, plural) in enumerate(spans):
        best = {kind: min(attached[kind][k], key=lambda dv: dv[0])[1] if k in attached[kind] else None
                for kind in attached}
        mentions.append(Mention(name, " ".join(t.text for t in tokens[s:e]), tokens[s].sentence, s, e, plural,
                                k in negated, best["colour"], best["count"], best["row"], best["col"]))
    return mentions


def mentioned_objects(text: str, include_negated: bool = True) -> set[str]:
    """Canonical names of the objects ``text`` mentions.

    With ``include_negated=True`` (the CHAIR / Object HalBench definition) "there is no dog" still
    mentions a dog: the reference metric does not parse negation, and we follow it so that numbers
    compare with published ones. Use ``include_negated=False`` for what the text claims is there.
    """
    return {m.name for m in extract_mentions(text) if include_negated or not m.negated}


def extract_facts(text: str) -> set[tuple]:
    """The facts ``text`` asserts: ("object", name), ("colour", name, colour), ("count", name, n),
    ("row", name, row), ("col", name, col). Negated mentions assert nothing."""
    facts: set[tuple] = set()
    for m in extract_mentions(text):
        if m.negated:
            continue
        facts.add(("object", m.name))
        for kind in ("colour", "count", "row", "col"):
            value = getattr(m, kind)
            if value is not None:
                facts.add((kind, m.name, value))
    return facts


def colour_words(text: str) -> list[str]:
    """Canonical colours named in ``text`` (not in quoted text), in order."""
    return [COLOUR_WORDS[t.text] for t in tokenize(text) if not t.literal and t.text in COLOUR_WORDS]


def position_words(text: str) -> list[str]:
    """Rows and columns ("top", "left", "centre", ...) named in ``text``, canonical, in order."""
    return [vocab.POSITION_WORDS[t.text] for t in tokenize(text) if not t.literal and t.text in vocab.POSITION_WORDS]


def place_words(text: str) -> list[str]:
    """Places named in ``text``, canonical, in order."""
    return [PLACE_WORDS[t.text] for t in tokenize(text) if not t.literal and t.text in PLACE_WORDS]


def sign_words(text: str) -> list[str]:
    """Sign words (vocab.SIGN_WORDS, upper case) in ``text``, quoted or not, in order. vocab keeps
    them apart from every noun, place, colour and number word, so none is read as anything else."""
    known = {w.lower() for w in vocab.SIGN_WORDS}
    return [t.text.upper() for t in tokenize(text) if t.text in known]


def numbers(text: str) -> list[int]:
    """The numbers ``text`` states, in order.

    Digits and number words count; the operands of a written sum ("3+4", "42 plus 5") do not, so
    "3+4 = 7" states 7. "a"/"an"/"single" (1) and "pair of" (2) count only before a noun phrase,
    and only when the text states no numeral at all ("there is a dog" answers "how many dogs?").
    """
    tokens = tokenize(text)
    value = [int(t.text) if t.text.isdigit() else _NUMERALS.get(t.text) for t in tokens]
    operand = set()
    for i, t in enumerate(tokens):
        if t.text in ("+", "plus") and 0 < i < len(tokens) - 1 and value[i - 1] is not None and value[i + 1] is not None:
            operand |= {i - 1, i + 1}
    stated = [v for i, v in enumerate(value) if v is not None and i not in operand]
    if stated:
        return stated
    return [m.count for m in extract_mentions(text) if m.count is not None and not m.negated]


def yes_no(text: str) -> str | None:
    """The first "yes" or "no" word of ``text``, or None when it has neither. MM-Vet-world reads
    yes/no answers this way; POPE-world follows the POPE reference script instead (``pope.py``)."""
    return next((t.text for t in tokenize(text) if t.text in YES_NO), None)
