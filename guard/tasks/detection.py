"""Is this prompt a multiple-choice question to be answered with an option ID?

Only a route with ``auto_detect: true`` asks (an explicit ``guard`` object never does). Many
ordinary prompts contain a numbered or lettered list — plans, recipes, agendas, "translate
these", "explain why each option is wrong" — and answering one of them with "1" is a hijack, so
the detector says yes only when the text reads as a question put to the model for one option:

    stem       some text before the options (the question or the instruction)
    options    2-10 consecutive option lines (:func:`~guard.tasks.prompt_text.find_options`)
    tail       nothing after the options, or only an answer cue ("Answer:", "Answer with the
               letter of the correct option.", "Which one is correct?")
    cue        the tail is an answer cue, or the stem asks for one option ("Which of the
               following", "multiple choice", "Choose the correct answer", an "Options:" header,
               "Question:", or the line before the options is a question that is not a request
               such as "Can you ...?")
    no veto    nothing in the stem's instructions or the tail asks for prose: explain, why, step
               by step, for each option, rewrite, translate, rank, summarise, review, ...

The question itself may contain any word ("Which of the following best *describes* ..."), so
prose verbs veto only where they give an instruction: at the start of a sentence, maybe after
"please" / "can you". The corpus in ``tests/data/ordinary_prompts.jsonl`` and the MMLU, ARC and
CommonsenseQA questions in ``../shared/data`` measure both sides
(``tests/guard/tasks/test_detection.py``).
"""

from __future__ import annotations

import re

from guard.tasks.prompt_text import McqPrompt, find_options

MAX_OPTION_CHARS = 400  # an option is a phrase or a sentence or two, not a section of a document
MAX_TAIL_CHARS = 300

_F = re.IGNORECASE

# The tail asks for the answer itself: an answer slot, or "answer / respond with the letter ...".
_STRONG_TAIL = re.compile(
    r"^(?:the\s+)?(?:correct\s+|final\s+|best\s+|right\s+|your\s+)?(?:answer|choice|option)"
    r"(?:\s+is)?\s*[:\uff1a\-]?\s*[(\[]?$"
    r"|\b(?:answer|respond|reply|choose|select|pick|output|return|give|write)\b[^.?!]*"
    r"\b(?:letter|option|choice|number|correct\s+answer|[A-J](?:,|\s+or)\s+[A-J])\b",
    _F,
)
# An instruction or a question about choosing one option.
_CHOICE_WORDS = re.compile(
    r"\b(?:answer|respond|reply|choose|select|pick|letter|option|choice|correct|which)\b", _F
)
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
_HEADER = re.compile(
    r"(?:^|\n)[ \t]*(?:answer\s+)?(?:options|choices|alternatives)\s*:?[ \t]*\n?\s*$", _F
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
    r"|\bbullet\s*points?\b|\bas\s+(?:a\s+)?(?:json|table|list|markdown)\b",
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
# A question line that is a request or asks for an opinion, not for one of the options.
_REQUEST_QUESTION = re.compile(
    r"^\W*(?:(?:can|could|would|will)\s+you|do\s+you\s+(?:mind|think|have)|any\s+"
    r"|how\s+(?:do|can|should|would)\s+(?:i|we|you)\b|what\s+(?:should|can|do)\s+(?:i|we)\b"
    r"|is\s+(?:this|it|there)\b|are\s+(?:these|there)\b|does\s+(?:this|it)\b|thoughts\b"
    r"|what(?:'s|\s+is)\s+(?:wrong|missing|your)|anything\b|did\s+i\b|should\s+i\b)",
    _F,
)
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
    if _STRONG_TAIL.search(tail):
        # The prompt ends by asking for the option: only a preamble's instructions can veto.
        return None if _asks_for_prose(_preamble(head)) else found
    if tail and not _CHOICE_WORDS.search(tail):
        return None  # something else follows the list
    if any(len(o) > MAX_OPTION_CHARS for o in found.options):
        return None
    labels = list(_QUESTION_LABEL.finditer(head))
    if _asks_for_prose(head[: labels[-1].start()] if labels else head):
        return None
    return found if tail or _stem_asks_for_an_option(head) else None


def _preamble(head: str) -> str:
    """What a prompt says before its question: the text before a "Question:" label, or a first
    line that introduces what follows ("Translate to French:")."""
    labels = list(_QUESTION_LABEL.finditer(head))
    if labels:
        return head[: labels[-1].start()]
    lines = head.strip().splitlines()
    return lines[0] if len(lines) > 1 and lines[0].rstrip().endswith(":") else ""


def _stem_asks_for_an_option(head: str) -> bool:
    if _STEM_CUES.search(head) or _HEADER.search(head) or _QUESTION_LABEL.search(head):
        return True
    lines = [ln.strip() for ln in head.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    return last.endswith("?") and not _REQUEST_QUESTION.match(last)


def _asks_for_prose(text: str) -> bool:
    if not text or _PROSE.search(text):
        return bool(text)
    return any(_IMPERATIVE.match(s) for s in _SENTENCES.split(text) if s)
