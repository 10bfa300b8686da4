"""Is this prompt a multiple-choice question to be answered with an option ID?

Only a route with ``auto_detect: true`` asks (a ``guard`` object that asks for calibration is
taken at its word). Many ordinary prompts contain a numbered or lettered list — plans, recipes,
agendas, "translate these", "explain why each option is wrong" — and answering one of them with
"1" is a hijack, so the detector says yes only when the text reads as a question put to the
model for one option. It finds the last run of 2-10 option lines
(:func:`~guard.tasks.prompt_text.find_options`) and a stem before them, then:

    answer slot   the text after the options asks for the option ("Answer:", "The answer is",
                  "Answer with the letter of the correct option.", "Respond with only the
                  letter."): an MCQ unless its preamble — what comes before a "Question:" label,
                  or the first line of a stem of several lines ("Translate this quiz to
                  German:") — gives another instruction, makes a request ("can you review
                  ...") or talks about the writer's own things ("my quiz").
    otherwise     the whole prompt must read as a plain question: nothing after the options
                  but a "which ...?" question; no instruction that asks for prose (explain,
                  why, step by step, for each option, select all that apply; sentences opening
                  with rewrite, translate, rank, summarise, review, ...), no request, no first
                  or second person outside a labelled question; options of at most
                  MAX_OPTION_CHARS; and a stem that asks for one option ("Which of the
                  following", "multiple choice", "Choose the correct answer", an "Options:"
                  header, a "Question:" label, or a plain question line about the world such as
                  "What is the capital of France?" — not "What do these words mean?").

The question itself may contain any word ("Which of the following best *describes* ..."), so
with an answer slot only the preamble is read for vetoes. The corpus in
``tests/data/ordinary_prompts.jsonl`` and the MMLU, ARC and CommonsenseQA questions in
``../shared/data`` measure both sides (``tests/guard/tasks/test_detection.py``).
"""

from __future__ import annotations

import re
from typing import Any

from guard.tasks.prompt_text import McqPrompt, find_options

MAX_OPTION_CHARS = 400  # an option is a phrase or a sentence or two, not a section of a document
MAX_TAIL_CHARS = 300

_F = re.IGNORECASE

# The tail asks for the answer itself: an answer slot, or "answer / respond with the letter ...".
_ANSWER_SLOT = re.compile(
    r"^(?:(?:the\s+)?(?:correct\s+|final\s+|best\s+|right\s+|your\s+)?(?:answer|choice|option)"
    r"(?:\s+is)?|A)\s*[:\uff1a\-]?\s*[(\[]?$",
    _F,
)
_ANSWER_VERB = re.compile(r"\b(?:answer|respond|reply|choose|select|pick|output|return)\b", _F)
_ANSWER_FORM = re.compile(
    r"\b(?:letter|option|choice|number|correct\s+answer|[A-J](?:,|\s+or)\s+[A-J])\b", _F
)
_SENTENCE_END = re.compile(r"[.?!]")


def _strong_tail(text: str) -> bool:
    """``text`` is an answer slot, or has a verb of answering followed, before the sentence
    ends (``.``, ``?``, ``!``), by the form of the answer. Each sentence is searched from its
    first such verb only, as a later one finds nothing the first did not: one pattern of verb,
    ``[^.?!]*`` and form cost a sentence of n verbs n squared."""
    if _ANSWER_SLOT.search(text):
        return True
    pos = 0
    while (verb := _ANSWER_VERB.search(text, pos)) is not None:
        end = _SENTENCE_END.search(text, verb.end())
        stop = end.start() if end is not None else len(text)
        if _ANSWER_FORM.search(text, verb.end(), stop):
            return True
        pos = stop
    return False


# A question about choosing one option, after the options ("Which one is correct?").
_WHICH_QUESTION = re.compile(r"\bwhich\b[^.!]*\?$", _F)
_STEM_CUES = re.compile(
    r"\bwhich\s+(?:of\s+the\s+(?:following|these|options|choices|answers|above|below|statements)"
    r"|one\b|option\b|answer\b|choice\b|statement\b)"
    r"|\bmultiple[- ]choice\b"
    r"|\b(?:choose|select|pick|identify|circle|mark)\s+(?:only\s+)?(?:the|one|an?)\s+"
    r"(?:(?:single|most|best|correct|right|true|false|appropriate|likely|accurate)\s+)*"
    r"(?:answer|option|choice|letter|statement|one|response)\b"
    r"|\b(?:correct|best|right)\s+(?:answer|option|choice|response)\b"
    r"|\b(?:answer|respond|reply)\s+(?:only\s+)?with\s+(?:only\s+)?(?:the|a|one|a\s+single)\s+"
    r"(?:letter|number|option)"
    r"|_{3,}|\bfill\s+in\s+the\s+blank",
    _F,
)
# A header line ending the stem: "Options:", "Answer choices". (Written with \s*:?[ \t]*\n?\s*
# before $, the same strings, it tried every way to share a run of n spaces out: n cubed.)
_HEADER = re.compile(
    r"(?:^|\n)[ \t]*(?:answer\s+)?(?:options|choices|alternatives)(?:\s*:)?\s*$", _F
)
_QUESTION_LABEL = re.compile(r"(?:^|\n)[ \t]*(?:question|q)\s*(?:\d+\s*)?[:.]", _F)

# Phrases that ask for prose wherever they are in the instructions or the tail.
_PROSE = re.compile(
    r"\bstep[- ]by[- ]step\b|\bexplain\b|\bexplanations?\b|\bjustif(?:y|ication)\b"
    r"|\byour\s+reasoning\b|\breasons?\s+(?:for|why)\b|\band\s+why\b|\bwhy\s+(?:each|not|the\s+others)"
    r"|\bshow\s+your\s+work\b|\bin\s+your\s+own\s+words\b|\bpros\s+and\s+cons\b"
    r"|\b(?:for|of)\s+each\b|\beach\s+(?:option|choice|answer|item|one|of\s+(?:them|these|the))"
    r"|\bevery\s+(?:option|choice|item|one)\b|\ball\s+(?:of\s+)?(?:these|the\s+options)\b"
    r"|\bwhat\s+do\s+you\s+think\b|\byour\s+(?:thoughts|opinion|feedback|take)\b"
    r"|\bmore\s+(?:polite|politely|formal|formally|concise|professional|casual|friendly)\b"
    r"|\bpolitely\b|\bin\s+(?:french|spanish|german|italian|portuguese|japanese|chinese|english)\b"
    r"|\b(?:a|one|two|three|few|short)\s+(?:sentences?|paragraphs?)\b|\bwords?\s+or\s+less\b"
    r"|\bbullet\s*points?\b|\bjson\b|\bmarkdown\b|\bas\s+(?:a\s+)?(?:table|list)\b"
    r"|\ball\s+that\s+apply\b|\bmore\s+than\s+one\b|\ball\s+(?:the\s+)?(?:items|ones|numbers)\b"
    r"|\b(?:two|three|four|several)\s+(?:of\s+(?:these|them|the)|options|answers|choices)\b",
    _F,
)
# Verbs that, opening a sentence, ask for something other than one option's ID.
_PROSE_VERBS = (
    "explain|describe|discuss|elaborate|justify|translate|rewrite|rephrase|paraphrase|reword"
    "|summari[sz]e|proofread|edit|review|critique|improve|polish|format|reformat|convert|turn"
    "|make|write|draft|compose|create|generate|add|expand|shorten|condense|simplify|sort|rank"
    "|order|reorder|prioriti[sz]e|organi[sz]e|group|categori[sz]e|classify|label|tag|list"
    "|compare|contrast|analy[sz]e|comment|give|suggest|recommend|brainstorm|help|check|fix"
    "|correct|debug|refactor|optimi[sz]e|document|outline|plan|schedule|remind|send|reply"
    "|respond|tell|continue|finish|complete|fill|merge|combine|split|count|extract|remove"
    "|delete|keep|update|change|adjust|tweak|estimate|grade|score|rate|evaluate|assess"
    "|look|go|walk|break|put|sum|total|calculate\\s+(?:the\\s+)?(?:total|cost)"
)
_OPENERS = (
    r"(?:please\s+|kindly\s+|now\s+|also\s+|then\s+|and\s+|just\s+|quickly\s+"
    r"|(?:can|could|would|will)\s+you\s+(?:please\s+)?|i\s+(?:need|want|would\s+like|'d\s+like)"
    r"\s+(?:you\s+)?to\s+|help\s+me\s+|let'?s\s+|go\s+ahead\s+and\s+)*"
)
_IMPERATIVE = re.compile(rf"^\W*{_OPENERS}(?:{_PROSE_VERBS})\b", _F)
# A request to the model for something other than choosing ("can you review ...").
_REQUEST = re.compile(
    r"\b(?:can|could|would|will)\s+you\s+(?:please\s+)?"
    r"(?!answer\b|choose\b|pick\b|select\b|solve\b|tell\s+me\s+which\b)\w+"
    r"|\bplease\s+(?!answer\b|choose\b|pick\b|select\b|solve\b|identify\b)\w+"
    r"|\bdo\s+you\s+(?:think|mind|have|know)\b|\byou\s+think\b|\bwould\s+you\b"
    r"|\bhelp\s+me\b|\blet'?s\b|\bnot\s+just\s+the\s+(?:letter|answer)\b|\bworked\s+solution\b",
    _F,
)
# Someone talking about their own things: a list of theirs, not a question put to the model.
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|we|we're|our|us)\b", _F)
_SECOND_PERSON = re.compile(r"\b(?:you|you're|your|yours)\b", _F)
# A bare question before the options: it asks about the world, not about "these" items.
_PLAIN_QUESTION = re.compile(
    r"^(?:which|what|who|whom|whose|where|when|why|how|is|are|was|were|do|does|did|can|could"
    r"|should|would|will|has|have|had|in|on|at|for|of|to|by|according|after|before|during)\b",
    _F,
)
_DEICTIC = re.compile(r"\b(?:these|this|those|here|list|above|below)\b", _F)
_SENTENCES = re.compile(r"(?<=[.!?:;])\s+|\n+")


def detect_mcq(text: str) -> McqPrompt | None:
    """The options of ``text`` if it is a multiple-choice question asking for one option's ID,
    else None (the request then passes through untouched)."""
    found = find_options(text)
    if found is None:
        return None
    first = found.spans[0][0]
    head = text[: text.rfind("\n", 0, first) + 1]
    tail = text[found.spans[-1][1] :].strip()
    if not re.search(r"\w", head) or len(tail) > MAX_TAIL_CHARS or _asks_for_prose(tail):
        return None
    if _strong_tail(tail) and not _FIRST_PERSON.search(tail):
        # The prompt ends by asking for the option: only a preamble's instructions can veto.
        pre = _preamble(head)
        vetoed = _asks_for_prose(pre) or _REQUEST.search(pre) or _FIRST_PERSON.search(pre)
        return None if vetoed else found
    # No answer slot at the end: the whole prompt must read as a plain question.
    asks_which = _STEM_CUES.search(tail) or _WHICH_QUESTION.search(tail)
    if (tail and not asks_which) or _talks(tail):
        return None  # something else follows the list
    if any(len(o) > MAX_OPTION_CHARS for o in found.options):
        return None
    labels = list(_QUESTION_LABEL.finditer(head))
    instructions = head[: labels[-1].start()] if labels else head
    if _asks_for_prose(instructions) or _talks(instructions):
        return None
    return found if tail or _stem_asks_for_an_option(head) else None


def _talks(text: str) -> bool:
    return bool(_REQUEST.search(text) or _FIRST_PERSON.search(text) or _SECOND_PERSON.search(text))


def _preamble(head: str) -> str:
    """What a prompt says before its question: the text before a "Question:" label, or the first
    line of a stem of several lines ("Translate to French:")."""
    labels = list(_QUESTION_LABEL.finditer(head))
    if labels:
        return head[: labels[-1].start()]
    lines = [ln for ln in head.strip().splitlines() if ln.strip()]
    return lines[0] if len(lines) > 1 else ""


def _stem_asks_for_an_option(head: str) -> bool:
    if _STEM_CUES.search(head) or _HEADER.search(head) or _QUESTION_LABEL.search(head):
        return True
    lines = [ln.strip() for ln in head.strip().splitlines() if ln.strip()]
    question = re.split(r"(?<=[.!?])\s+", lines[-1])[-1] if lines else ""
    return (
        question.endswith("?")
        and bool(_PLAIN_QUESTION.match(question))
        and not _DEICTIC.search(question)
    )


def _asks_for_prose(text: str) -> bool:
    if not text or _PROSE.search(text):
        return bool(text)
    return any(_IMPERATIVE.match(s) and not _strong_tail(s) for s in _SENTENCES.split(text) if s)


# A guard object setting any of these without a task asks to calibrate a multiple-choice question.
MCQ_FIELDS = frozenset({"calibration", "options", "budget", "key"})
MAX_ID_TOKENS = 16  # a request allowing more tokens than this wants more than an option ID


def wants_more_than_an_id(body: dict[str, Any]) -> bool:
    """True if the request asks for something an option ID cannot be: tools or functions, a
    ``response_format``, several choices, or room for more than a few tokens. Such a request
    is calibrated only when ``guard.task`` says so."""
    fmt = body.get("response_format")
    limits = [body.get("max_tokens"), body.get("max_completion_tokens")]
    return bool(
        body.get("tools")
        or body.get("functions")
        or (fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"))
        or (isinstance(body.get("n"), int) and body["n"] > 1)
        or any(isinstance(v, int) and v > MAX_ID_TOKENS for v in limits)
    )
