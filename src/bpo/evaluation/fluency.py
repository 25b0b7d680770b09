"""Fluency guards for choosing BPO hyperparameters: is the tuned model still writing the world's
language, or has DPO displaced likelihood onto degenerate text ("the the the", answers cut off
mid-sentence, words that exist nowhere in the world)?

Three measures, summarised by :func:`fluency_summary`:

1. **Parsed share** (:func:`parsed_share`): the share of responses whose every sentence the world's
   parser reads. Text is split into tokens and sentences exactly as the judges split it
   (``bpo.evaluation.text.tokenize``: lower case; ``.!?;`` and line breaks end a sentence; "n't" is
   "not"). A response is *read* when all of these hold:

   - it has at least one word (an empty or punctuation-only response says nothing);
   - it holds no character the parser would silently drop: only letters, digits, white space and
     ``. , ! ? ; + = " ' ’ “ ”`` (anything else, "#", "-", ":", "<", is text the judges never see);
   - it ends with ``.``, ``!`` or ``?`` (a closing quote may follow): an answer cut at the token
     budget ends mid-sentence;

   and every sentence (the tokens between two sentence marks; empty ones are skipped) is read:

   - every token is *known* (:data:`KNOWN_WORDS`), quoted or not, or is a number written in digits:
     the world's lexicon (``bpo.world.vocab``: object names, plurals and synonyms with their regular
     plurals, categories and uses, places and the parser's words for them, colours, positions,
     number and count words, sign words), the words the parser reads as grammar (negation cues,
     modifiers, the function words a negation's scope crosses, yes/no, the symbols ``, + =``) and
     the words the world's answer templates put around the lexicon (:data:`TEMPLATE_WORDS`, from
     ``bpo.world.language`` and the benchmark references of ``bpo.evaluation.benchmarks``);
   - it has at most :data:`MAX_SENTENCE_TOKENS` tokens (the world's longest sentence, a caption or
     a story listing six objects, has about 37);
   - it neither starts with a comma or an operator nor ends with a word that needs a continuation
     (:data:`DANGLING`: an article, a preposition, a conjunction, a comma or an operator):
     "There is a red car in the." was cut off even if a full stop follows;
   - no fragment of one or more tokens is immediately repeated ("the the", "in the top in the
     top"): the world's templates never do that, a stuttering model does.

   The world's own answers (every template of ``bpo.world.language`` and every benchmark
   reference) read as 100 % fluent; a test checks it on a few hundred scenes.

2. **Perplexity** (:func:`response_perplexity`): the frozen base model's perplexity of each
   response, exp of the mean negative log-likelihood per response token, by default of the LM
   alone (no image). Response tokens are the ones training learns (``encode_example``'s labels):
   the answer and its end-of-turn marker. The overall value is token-weighted:
   exp(sum of NLL / sum of tokens).

3. **Repetition** (:func:`repeated_ngram`): whether some n-gram of word tokens (default 4) occurs
   3 or more times in a response, across sentences ("There is a car. There is a car. There is a
   car." reads sentence by sentence, but is degenerate). 0.04 % of the world's answers do this
   (a few long descriptions with three "there is a red" objects), so the share should be near 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from bpo.evaluation import text as T
from bpo.models.chat import IGNORE_INDEX, encode_example
from bpo.models.forward import pixel_values, token_logprobs, vision_features
from bpo.precision import autocast as bf16_autocast
from bpo.training.data import collate
from bpo.world import vocab

# ------------------------------------------------------------------------------------- vocabulary

# The words the world's answer templates put around the lexicon: bpo.world.language (descriptions,
# captions, sign and object answers) and the references of bpo.evaluation.benchmarks (category
# phrases, the story, totals, differences, reasoning). Questions are not answers and are left out.
TEMPLATE_WORDS: frozenset[str] = frozenset("""
    a an the this that there it they is are was were be can could
    and or with of in on at to from for than which
    yes no nothing
    image picture scene view part corner sign text number sum
    shows reads says reading equals taken empty
    kind piece pieces item device electronic animals vehicles
    more total unusual see use ride drive eat
    one sunny day spent whole afternoon together ended happily
""".split())


def _words(phrase: str) -> set[str]:
    return {t.text for t in T.tokenize(phrase)}


def _lexicon_words() -> frozenset[str]:
    """Every word the world's lexicon (vocab) and the parser's grammar (text) know."""
    words: set[str] = set()
    for info in vocab.OBJECTS.values():
        for name in (info.name, info.plural, *info.synonyms):
            words |= _words(name) | _words(T.pluralise(name))
        words |= _words(info.category) | _words(info.use)
    words |= set(vocab.PLACES) | set(T.PLACE_WORDS) | set(T.COLOUR_WORDS) | set(vocab.POSITION_WORDS)
    words |= set(vocab.NUMBER_WORDS) | set(vocab.COUNT_NAMES.values()) | {w.lower() for w in vocab.SIGN_WORDS}
    words |= set(T.MODIFIERS) | set(T.NEGATION_CUES) | set(T.YES_NO)
    # The function words a negation's scope crosses ("i do not see any dog") are grammar the
    # parser reads; the same set the parser uses, so the two cannot drift apart.
    words |= set(T._NEGATION_SKIP) | set(T._CONJUNCTIONS)
    return frozenset(words | {"+", "="})


KNOWN_WORDS: frozenset[str] = _lexicon_words() | TEMPLATE_WORDS
# Words after which a sentence cannot stop: it was cut off.
DANGLING: frozenset[str] = frozenset({
    "a", "an", "the", "this", "of", "in", "on", "at", "to", "from", "for", "with", "than",
    "and", "or", "nor", "which", ",", "+", "=",
})
_NO_START = frozenset({",", "+", "="})
MAX_SENTENCE_TOKENS = 50
# Characters the parser reads (tokens, sentence marks, quotes, apostrophes) and white space.
_UNREAD_CHAR = re.compile(r"""[^A-Za-z0-9\s.,!?;+="'’“”]""")
_FINAL_STOP = re.compile(r"""[.!?]["”']*\s*$""")


def _check_responses(responses, where: str) -> list[str]:
    if isinstance(responses, str):
        raise TypeError(f"{where}: pass a list of responses, not one string")
    responses = list(responses)
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise TypeError(f"{where}: responses[{i}] is {type(r).__name__}, not str")
    return responses


def _sentences(tokens: list[T.Token]) -> list[list[str]]:
    """Token texts per non-empty sentence, in order."""
    by: dict[int, list[str]] = {}
    for t in tokens:
        by.setdefault(t.sentence, []).append(t.text)
    return list(by.values())


def _stutter(words: list[str]) -> list[str] | None:
    """The first fragment that is immediately repeated, if any."""
    n = len(words)
    for width in range(1, n // 2 + 1):
        for i in range(n - 2 * width + 1):
            if words[i:i + width] == words[i + width:i + 2 * width]:
                return words[i:i + width]
    return None


def _sentence_problem(words: list[str]) -> str | None:
    if len(words) > MAX_SENTENCE_TOKENS:
        return f"{len(words)} tokens (at most {MAX_SENTENCE_TOKENS})"
    unknown = [w for w in words if w not in KNOWN_WORDS and not w.isdigit()]
    if unknown:
        return f"unknown word {unknown[0]!r}"
    if words[0] in _NO_START:
        return f"starts with {words[0]!r}"
    if words[-1] in DANGLING:
        return f"ends with {words[-1]!r}"
    repeated = _stutter(words)
    if repeated:
        return f"repeats {' '.join(repeated)!r}"
    return None


def unread_reason(response: str) -> str | None:
    """Why the parser does not read ``response`` (the first rule it breaks, see the module
    docstring), or None when it reads every sentence."""
    if not isinstance(response, str):
        raise TypeError(f"unread_reason: expected a string, got {type(response).__name__}")
    tokens = T.tokenize(response)
    if not tokens:
        return "no words"
    bad = _UNREAD_CHAR.search(response)
    if bad:
        return f"character {bad.group()!r} the parser does not read"
    if not _FINAL_STOP.search(response):
        return "no full stop at the end (cut off)"
    for k, words in enumerate(_sentences(tokens)):
        problem = _sentence_problem(words)
        if problem:
            return f"sentence {k + 1}: {problem}"
    return None


def is_parsed(response: str) -> bool:
    """Whether the world's parser reads every sentence of ``response``."""
    return unread_reason(response) is None


def parsed_share(responses: list[str]) -> tuple[float, list[bool]]:
    """(share of responses the parser reads in [0, 1], per-response flags). NaN share for no
    responses: a rate with no denominator is undefined, not 0 or 1."""
    flags = [is_parsed(r) for r in _check_responses(responses, "parsed_share")]
    return (sum(flags) / len(flags) if flags else math.nan), flags


def word_count(response: str) -> int:
    """Word tokens of ``response`` (words and numbers; not ``, + =``)."""
    return sum(t.text.isalnum() for t in T.tokenize(response))


def repeated_ngram(response: str, n: int = 4, times: int = 3) -> bool:
    """Whether some ``n``-gram of word tokens occurs ``times`` or more in ``response`` (across
    sentences: a loop of whole sentences is degenerate too)."""
    if n < 1 or times < 2:
        raise ValueError(f"repeated_ngram: need n >= 1 and times >= 2, got n={n}, times={times}")
    words = [t.text for t in T.tokenize(response) if t.text.isalnum()]
    counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return any(c >= times for c in counts.values())


# ------------------------------------------------------------------------------------- perplexity

@dataclass(frozen=True)
class Perplexity:
    """Perplexity of each response (``per_response``, [N]), the response tokens scored for each
    (``n_tokens``, [N]) and the token-weighted ``overall`` exp(sum NLL / sum tokens)."""

    per_response: np.ndarray
    n_tokens: np.ndarray
    overall: float


def response_perplexity(model, processor, questions: list[str], responses: list[str], images=None,
                        batch_size: int = 16, autocast: bool = False, progress: bool = False) -> Perplexity:
    """The frozen ``model``'s perplexity of each response as the answer to its question.

    ``images=None`` (the default) scores the LM alone, with prompts that hold no image: the
    base LM's judgement of the text. With one image per question, the full LLaVA scores the
    answer after its image. Batches are sorted by length so they pad little; ``autocast`` runs
    the forward passes under bf16 autocast (CPU or CUDA; log-softmax stays fp32).
    """
    where = "response_perplexity"
    responses = _check_responses(responses, where)
    questions = list(questions)
    if len(questions) != len(responses):
        raise ValueError(f"{where}: got {len(questions)} questions but {len(responses)} responses: "
                         "need one response per question")
    if images is not None and len(images) != len(questions):
        raise ValueError(f"{where}: got {len(images)} images but {len(questions)} questions: "
                         "need one image per question (or images=None for the LM alone)")
    if batch_size < 1:
        raise ValueError(f"{where}: batch_size must be >= 1, got {batch_size}")
    if not responses:
        return Perplexity(np.zeros(0), np.zeros(0, dtype=int), math.nan)
    with_image = images is not None
    if with_image:
        # one image's features, on the model's device (llava.n_image_features runs on the CPU only)
        with torch.no_grad():
            n_image_tokens = vision_features(model, pixel_values(processor, images[:1]).to(model.device)).shape[1]
    else:
        n_image_tokens = 0
    examples = [encode_example(processor, [{"role": "user", "content": q}, {"role": "assistant", "content": r}],
                               n_image_tokens, with_image=with_image)
                for q, r in zip(questions, responses)]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    pad_id = processor.tokenizer.pad_token_id
    pad_id = 0 if pad_id is None else pad_id  # padding is masked and unlabelled: any id will do
    device = model.device
    nll = np.zeros(len(examples))
    n_tokens = np.zeros(len(examples), dtype=int)
    was_training = model.training
    model.eval()  # no dropout: the score of a frozen model
    try:
        with torch.no_grad(), bf16_autocast(autocast, device.type):
            for start in tqdm(range(0, len(order), batch_size), desc="perplexity", disable=not progress, leave=False):
                idx = order[start:start + batch_size]
                ids, mask, labels = (x.to(device) for x in collate([examples[i] for i in idx], pad_id))
                feats = None
                if with_image:
                    feats = vision_features(model, pixel_values(processor, [images[i] for i in idx]).to(device))
                logp, rows = token_logprobs(model, ids, mask, feats, labels)
                sums = torch.zeros(len(idx), dtype=torch.float64, device=logp.device).index_add(0, rows, logp.double())
                nll[idx] = -sums.cpu().numpy()
                n_tokens[idx] = (labels[:, 1:] != IGNORE_INDEX).sum(1).cpu().numpy()
    finally:
        model.train(was_training)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_response = np.exp(nll / n_tokens)
    overall = float(np.exp(nll.sum() / n_tokens.sum())) if n_tokens.sum() else math.nan
    return Perplexity(per_response, n_tokens, overall)


# ---------------------------------------------------------------------------------------- summary

def fluency_summary(responses: list[str], model=None, processor=None, questions: list[str] | None = None,
                    images=None, batch_size: int = 16, n: int = 4, times: int = 3, autocast: bool = False) -> dict:
    """The guards in one dict:

    - ``parsed_%``: responses the parser reads in full (x100);
    - ``perplexity``: the token-weighted perplexity under ``model`` (NaN without a model);
    - ``mean_words``: mean word tokens per response;
    - ``repeated_ngram_%``: responses with an ``n``-gram occurring ``times`` or more (x100);
    - ``n_responses``.
    """
    responses = _check_responses(responses, "fluency_summary")
    perplexity = math.nan
    if model is not None:
        if processor is None or questions is None:
            raise ValueError("fluency_summary: perplexity needs the processor and the questions as well as the model")
        perplexity = response_perplexity(model, processor, questions, responses, images, batch_size, autocast).overall
    share, _ = parsed_share(responses)
    repeated = [repeated_ngram(r, n, times) for r in responses]
    return {
        "parsed_%": 100 * share,
        "perplexity": perplexity,
        "mean_words": float(np.mean([word_count(r) for r in responses])) if responses else math.nan,
        "repeated_ngram_%": 100 * sum(repeated) / len(repeated) if repeated else math.nan,
        "n_responses": len(responses),
    }
