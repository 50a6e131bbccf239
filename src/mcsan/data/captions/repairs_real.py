"""Repairs for real (MSR-VTT-style) captions: contractions, fragments, hidden verbs.

Crowd-written captions are rarely full sentences: "people singing", "a girl dancing on
stage", "thor talks to his teammates", "there s a man cooking". The small English model
tags many of their verbs as nouns, so no action and no relation come out. Each function
here fixes one such failure on the :class:`TokenTable` (in place, O(tokens)):

* split contractions ("there s", "he s", "they re", "don t", "i m") are joined before
  tagging (:func:`join_contractions`), and a clitic the tokenizer splits off "thats",
  "hes", "im" is an auxiliary, so no action ``s``/``re``/``t``/``m`` appears;
* a past participle modifying the noun after it ("an animated man", "a painted wall") is
  an adjective, not an action;
* an ``-ing`` word tagged as a noun right after a noun ("people singing", "a rock band
  playing music") or after "and" following a verb ("singing and dancing") is a verb: a
  participle of that noun, or a conjunct of that verb;
* in a caption without a verb, a present-tense verb tagged as a noun after its subject
  ("thor talks to his teammates", "kids play with toys", "a man and woman dance together")
  becomes the root with that subject;
* a participle attached to the object of a locative preposition ("a woman stands in a
  kitchen stirring a pot") belongs to the clause's verb, so its subject is the woman.
"""

from __future__ import annotations

import re

from mcsan.data.captions.repairs import ARGUMENT_POS, NOUN_POS, TokenTable

_CONTRACTIONS = (
    (re.compile(r"\b(\w+)n t\b", re.IGNORECASE), r"\1n't"),
    (re.compile(r"\b(\w+) (s|re|ve|ll)\b", re.IGNORECASE), r"\1'\2"),
    (re.compile(r"\b(i) (m)\b", re.IGNORECASE), r"\1'\2"),
)

NOT_VERB_ING = frozenset(
    "building clothing ceiling evening morning wedding pudding thing something nothing "
    "anything everything king ring string spring wing swing sibling darling ping icing "
    "stuffing lightning ending beginning meeting feeling painting drawing recording setting "
    "opening earring during awning railing sing bring".split()
)
"""``-ing`` nouns that are not verb forms in captions (or too often nouns to guess)."""

NOT_VERB_NOUNS = frozenset(
    "characters games videos clips highlights pictures photos images sports cartoons toys "
    "shows scores tracks lines lyrics trailers commercials stars animals cars news series "
    "people kids game video clip picture photo image sport cartoon toy show score track "
    "line trailer commercial star animal car movie film music water food part hair face "
    "head hand room way time place end side top view shot scene".split()
)
"""Plural or base-form nouns that are verbs in the lexicon but nearly always nouns here."""

_FOLLOWERS = frozenset({"ADP", "DET", "PRON", "ADV", "PART", "CCONJ", "PUNCT", "SCONJ"})


def join_contractions(text: str) -> str:
    """Join contractions split by a space ("there s" -> "there's", "don t" -> "don't")."""
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def ing_base(word: str, verbs: frozenset[str]) -> str | None:
    """The verb base of an ``-ing`` form ("running" -> "run", "dancing" -> "dance")."""
    if len(word) < 5 or not word.endswith("ing") or word in NOT_VERB_ING:
        return None
    stem = word[:-3]
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[:-1] in verbs:
        return stem[:-1]
    if stem + "e" in verbs and (stem not in verbs or _cvc(stem)):
        return stem + "e"
    if stem in verbs:
        return stem
    return None


def _cvc(stem: str) -> bool:
    vowels = "aeiou"
    return (
        len(stem) >= 3
        and stem[-1] not in vowels + "wxy"
        and stem[-2] in vowels
        and stem[-3] not in vowels
    )


def _chain(table: TokenTable, token: int, limit: int) -> list[int]:
    """``token`` and its heads, up to the root or the first head at or past ``limit``."""
    out = [token]
    while len(out) <= len(table):
        head = table.head[out[-1]]
        if head == out[-1] or head >= limit:
            break
        out.append(head)
    return out


def _promote(table: TokenTable, verb: int, subject: int, finite: bool) -> None:
    """Re-hang the tree around a noun-tagged word that is really a verb.

    ``finite``: the verb becomes the root and the left part's root noun (or ``subject``'s
    phrase) its subject; otherwise the verb is a participle (``acl``) of ``subject``. The
    words right of the verb that hung on the left part or on the verb's old heads hang on
    the verb (the first noun as its direct object). No cycle can arise: left words end up
    under the left part's top, right words under the verb.
    """
    n = len(table)
    _release_preposition(table, verb)
    old_heads = list(table.head)
    left_root = next((k for k in range(verb) if old_heads[k] == k), None)
    top = _chain(table, subject, verb)[-1]
    if finite:
        subj = left_root if left_root is not None and table.pos[left_root] in ARGUMENT_POS else top
        table.head[verb], table.dep[verb] = verb, "ROOT"
        table.head[subj], table.dep[subj] = verb, "nsubj"
        anchor = subj
    else:
        table.head[verb], table.dep[verb] = subject, "acl"
        if old_heads[top] >= verb:
            if left_root is None or left_root == top:
                table.head[top], table.dep[top] = top, "ROOT"
            else:
                table.head[top], table.dep[top] = left_root, "dep"
        anchor = top
    for k in range(verb):
        if k not in (anchor, verb) and old_heads[k] >= verb and table.head[k] == old_heads[k]:
            table.head[k] = anchor
    has_object = bool(table.kids(verb, "dobj"))
    for k in range(verb + 1, n):
        head = old_heads[k]
        if head < verb or head == k or (head == verb and table.dep[k] == "compound"):
            table.head[k] = verb
            if table.pos[k] in NOUN_POS and not has_object:
                table.dep[k], has_object = "dobj", True
                for child in table.kids(k, "prep"):
                    if table.lower[child] in LOCATIVE_PLACES:
                        table.head[child] = verb
            elif table.dep[k] in ("ROOT", "compound", "conj", "appos", "npadvmod"):
                table.dep[k] = "dep"
    table.rebuild_children()


def _release_preposition(table: TokenTable, verb: int) -> None:
    """A verb parsed as the object of a preposition ("with blonde hair sings") hands that
    role to the last noun before it ("hair")."""
    if table.dep[verb] != "pobj":
        return
    prep = table.head[verb]
    inside = [k for k in range(prep + 1, verb) if table.head[k] == verb]
    nouns = [k for k in inside if table.pos[k] in NOUN_POS]
    if not nouns:
        return
    noun = nouns[-1]
    for k in inside:
        table.head[k] = noun
    table.head[noun], table.dep[noun] = prep, "pobj"


def _retag(table: TokenTable, token: int, lemma: str, tag: str) -> None:
    table.pos[token], table.tag[token], table.lemma[token] = "VERB", tag, lemma


def repair_ing_nouns(table: TokenTable, verbs: frozenset[str]) -> None:
    """ "people singing", "singing and dancing": ``-ing`` nouns that are verb forms."""
    for c in range(1, len(table)):
        nominal_verb = (
            table.pos[c] == "VERB"
            and table.dep[c] in ("compound", "amod", "nmod")
            and table.head[c] > c
        )
        if table.pos[c] not in NOUN_POS and not nominal_verb:
            continue
        base = ing_base(table.lower[c], verbs)
        if base is None:
            continue
        prev = c - 1
        if table.pos[prev] in ("CCONJ", "PUNCT") and prev > 0:
            verb = next((k for k in range(prev - 1, -1, -1) if table.pos[k] == "VERB"), None)
            if verb is not None and c not in _chain(table, verb, len(table)):
                _retag(table, c, base, "VBG")
                table.head[c], table.dep[c] = verb, "conj"
                for k in range(c + 1, len(table)):
                    if table.head[k] < c and table.dep[k] in ("prep", "dobj", "advmod"):
                        table.head[k] = c
                table.rebuild_children()
            continue
        if table.pos[prev] in ARGUMENT_POS and table.tag[prev] != "PRP$":
            _retag(table, c, base, "VBG")
            _promote(table, c, prev, finite=False)


def repair_fragment_verbs(table: TokenTable, verbs: frozenset[str]) -> None:
    """In a caption without a verb, a present-tense verb tagged as a noun after its subject
    becomes the root ("thor talks to his teammates", "kids play with toys")."""
    if any(p == "VERB" for p in table.pos):
        return
    n = len(table)
    for c in range(1, n):
        word, prev = table.lower[c], c - 1
        if table.pos[c] not in NOUN_POS or word in NOT_VERB_NOUNS:
            continue
        if table.lemma[c] not in verbs or table.pos[prev] not in ARGUMENT_POS:
            continue
        nxt = table.pos[c + 1] if c + 1 < n else "PUNCT"
        if nxt not in _FOLLOWERS:
            continue
        if table.tag[c] in ("NNS", "VBZ") and word.endswith("s") and not word.endswith("ss"):
            plausible = table.tag[prev] in ("NN", "NNP", "PRP")
            tag = "VBZ"
        else:
            plural_subject = table.tag[prev] in ("NNS", "NNPS") or "and" in table.lower[:prev]
            plausible = table.tag[c] == "NN" and word == table.lemma[c] and plural_subject
            tag = "VBP"
        if not plausible:
            continue
        _retag(table, c, table.lemma[c], tag)
        _promote(table, c, prev, finite=True)
        for k in table.kids(c, "conj"):
            if table.pos[k] in NOUN_POS and table.lemma[k] in verbs and k > c:
                _retag(table, k, table.lemma[k], tag)
        return


def repair_participle_adjectives(table: TokenTable) -> None:
    """ "an animated man": a past participle before the noun it modifies is an adjective."""
    for i in range(len(table)):
        if table.pos[i] == "VERB" and table.tag[i] in ("VBN", "VBD"):
            head = table.head[i]
            if table.dep[i] in ("amod", "compound") and head > i and table.pos[head] in NOUN_POS:
                table.pos[i], table.tag[i], table.lemma[i] = "ADJ", "JJ", table.lower[i]


LOCATIVE_PLACES = frozenset("in on at inside near by beside behind under".split())


def repair_participle_subject(table: TokenTable) -> None:
    """ "a woman stands in a kitchen stirring a pot": a participle hanging on the object of a
    locative preposition of a verb belongs to that verb (subject: the woman)."""
    moved = False
    for i in range(len(table)):
        if table.pos[i] != "VERB" or table.tag[i] != "VBG" or table.dep[i] != "acl":
            continue
        noun = table.head[i]
        prep = table.head[noun]
        if table.dep[noun] != "pobj" or table.lower[prep] not in LOCATIVE_PLACES:
            continue
        verb = table.head[prep]
        if table.pos[verb] == "VERB" and verb != prep and verb < i:
            table.head[i], table.dep[i] = verb, "advcl"
            moved = True
    if moved:
        table.rebuild_children()


CLITICS = {"s": "be", "re": "be", "m": "be", "ll": "will", "ve": "have", "d": "would", "t": "not"}
"""Contraction remnants the tokenizer splits off "thats", "hes", "theyre", "im"."""


def repair_clitics(table: TokenTable) -> None:
    """ "hes with a dog", "whats on": a split-off clitic tagged as a verb is an auxiliary."""
    for i, word in enumerate(table.lower):
        if word in CLITICS and table.pos[i] == "VERB":
            table.pos[i], table.lemma[i] = "AUX", CLITICS[word]


def repair_verb_lemmas(table: TokenTable, verbs: frozenset[str]) -> None:
    """ "is ring a bike", "are sing": a verb whose lemma is no verb ("re", "se") but whose
    word is one keeps the word as its lemma."""
    for i, word in enumerate(table.lower):
        if table.pos[i] == "VERB" and table.lemma[i] not in verbs and word in verbs:
            table.lemma[i] = word


def repair_real(table: TokenTable, verbs: frozenset[str]) -> None:
    """Apply the real-caption repairs in order (after the base repairs)."""
    repair_clitics(table)
    if verbs:
        repair_verb_lemmas(table, verbs)
    repair_participle_adjectives(table)
    repair_ing_nouns(table, verbs)
    repair_fragment_verbs(table, verbs)
    repair_participle_subject(table)
