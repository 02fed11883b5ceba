r"""Pure-Python stand-in for the COCO caption tokenizer (no Java needed).

pycocoevalcap tokenizes captions with Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase`
and then drops the tokens in its PUNCTUATIONS list. `tokenize` reproduces that pipeline for one caption:
a longest-match scanner over the token classes of the PTB lexer (ties go to the earlier class), the
lexer's normalisations, lower-casing, and the punctuation filter.

What it reproduces (checked against the Java tokenizer in tests/evaluate/test_ptb_tokenizer.py):
  * contractions: "can't" -> "ca n't", "it's" -> "it 's", "I'd've" -> "i 'd 've", "cannot" -> "can not",
    "gonna" -> "gon na", "'tis" -> "'t is"; apostrophe words kept whole ("o'clock", "ma'am", "'90s").
  * hyphenated words stay whole ("state-of-the-art", "1.5-meter"); free-standing dashes are dropped.
  * numbers stay whole ("3.5", "3,000", "12:30", "-5", "1/2", "1 1/2" joined by a no-break space);
    "10%" -> "10 %", "$5" -> "$ 5", "£" -> "#", "€" -> "$", "¢" -> "cents", "½" -> "1/2".
  * quotes (straight, curly, ``, '', « ») and . , ; : ? ! ... -- - are dropped; "?!" and "!!" are
    kept, as in pycocoevalcap (they are not in its list).
  * brackets become -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- and are KEPT: pycocoevalcap's list holds the
    upper-case forms, but the Java tokenizer has already lower-cased them.
  * a period stays on known abbreviations and initials ("mr.", "st.", "etc.", "u.s.", "e.g.", "a.");
    on "no." / "fig." / "ca." only before a number.
  * any whitespace (including newlines and no-break spaces) separates tokens.

Known differences from the Java tokenizer (on ~29k fuzzed strings of caption words, contractions,
numbers, symbols and random ASCII, only the first kind and one "<_^" showed up):
  * pycocoevalcap tokenizes all captions as one file, one caption per line, and a few lexer rules read
    past the end of a caption into the next one: a caption ending in "No." / "Fig." / "ca." keeps the
    period only if the next caption starts with a digit, and one ending in a single initial ("... I.")
    loses it if the next caption starts with e.g. "The". Here every caption is tokenized as if an
    empty line followed it ("fig", "i.").
  * a carriage return, form feed, vertical tab, U+0085, U+2028 or U+2029 inside a caption makes the Java
    tokenizer (run with -preserveLines) emit an extra line, which misaligns every later caption in
    pycocoevalcap; here they are plain separators.
  * rare lexer classes are approximated or absent: SGML tags, URLs and e-mail addresses follow simplified
    patterns; Asian-style emoticons ("^_^") are not recognised.
  * characters the Java lexer cannot tokenize are deleted there; here all characters outside the Basic
    Multilingual Plane (e.g. emoji), control/format/private-use/space characters and letter-numbers
    (e.g. "Ⅻ") are deleted, and every other symbol becomes a one-character token. Letters, digits and
    lower-casing follow Python's Unicode tables rather than Java's.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import Callable, NamedTuple

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS: tokens removed after tokenization.
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])

# Separators of the Java lexer: spaces and line breaks.
_SPACE_CHARS = " \t\n\r\x0b\x0c\x85\xa0\u2028\u2029\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
_SPACE = frozenset(_SPACE_CHARS)
_SOFT_HYPHEN = "\u00ad"


def _char_ranges(categories: tuple[str, ...], extra: str = "") -> str:
  """A regex character-class body with every BMP character of the given Unicode categories."""
  out, start, prev = [], None, None
  for cp in range(0x10000):
    if unicodedata.category(chr(cp)).startswith(categories) or chr(cp) in extra:
      if start is None:
        start = cp
      prev = cp
    elif start is not None:
      out.append(re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else ""))
      start = None
  if start is not None:
    out.append(re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start else ""))
  return "".join(out)


_L = _char_ranges(("L", "M"), extra=_SOFT_HYPHEN)   # letters (with combining marks and soft hyphen)
LET = f"[{_L}]"
NONLET = f"(?:[^{_L}]|\\Z)"                            # trailing context "not a letter" (end counts)
NONASCII = "(?:[^A-Za-z]|\\Z)"                          # ... "not an ASCII letter"
NONASCIIAN = "(?:[^A-Za-z0-9]|\\Z)"                    # ... "not an ASCII letter or digit"
AN = f"[{_L}\\d]"
APOS = "['\u0092\u2019]"
APOSX = "['\u0092\u2019`\u0091\u2018\u201b]"          # apostrophe-like characters inside words
WORD = f"{LET}{AN}*(?:[.!?]{LET}{AN}*)*"
NUM = r"(?:\d*(?:[.:,\u066b\u066c]\d+)+|\d+)"
REDAUX = "(?:[msdMSD]|[rR][eE]|[vV][eE]|[lL][lL])"
SREDAUX = f"[nN]{APOSX}[tT]"
ACRO = r"[A-Za-z](?:\.[A-Za-z])*"
ACRO2 = r"[A-Za-z](?:\.[A-Za-z])+"
SPACE = f"[{re.escape(_SPACE_CHARS)}]"
# Capitalised words after which an initial ends a sentence ("... part I. The ..." -> "i" + ".").
_SENTENCE_STARTS = "|".join(
    f"{w[0]}(?i:{re.escape(w[1:])})" if len(w) > 1 else w
    for w in ("About According Additionally After An A As At But Earlier He Her Here However If In It "
              "Last Many More Mr. Ms. Now Once One Other Our She Since So Some Such That The Their Then "
              "There These They This We When While What Yet You").split())
_NAME = r"[A-Za-z][A-Za-z0-9_:.-]*"
_ATTR = f"{_NAME}(?:[ ]*=[ ]*(?:'[^'\\r\\n]*'|\"[^\"\\r\\n]*\"|{_NAME}))?"
THING = f"(?:[dDoOlL]{APOSX}{AN})?{AN}+(?:[-_\u058a\u2010\u2011](?:[dDoOlL]{APOSX}{AN})?{AN}+)*"  # x-ray, o'clock

# Abbreviations that keep their period. The first group (months, days, states, companies, ...) is
# matched with two characters of trailing context, so "etc.x" -> "etc." + "x" but "mr.x" stays whole.
_ABBREV_CONTEXT = ("jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec|mon|tues?|wed|thu|thurs|fri|"
                   "ala|ariz|calif|colo|conn|ct|dak|fla|ga|ind|kans?|ky|md|mich|minn|mo|mont|neb|nev|okla|"
                   "penn|tenn|va|vt|wisc?|wyo|inc|cos?|corp|pp?t[ye]s?|ltd|plc|rt|bancorp|bhd|assn|univ|"
                   "intl|sys|tel|est|ext|sq|jr|sr|bros|ed\\.d|ph\\.d|blvd|rd|esq|etc|al|seq|bldg")
_ABBREV_CONTEXT_CASED = "Ark|Az|Del|Ill|La|Mass|Miss|Ore|Pa|Tex|Wash"
_ABBREV = ("mrs?|ms|drs?|profs?|sens?|reps?|attys?|lt|col|gen|messrs|govs?|adm|rev|maj|sgt|cpl|pvt|capt|"
           "ste?|ave|pres|lieut|hon|brig|co?mdr|pfc|spc|supts?|det|mt|ft|adj|adv|asst|assoc|ens|insp|"
           "mlle|mme|msgr|sfc|vs|alex|wm|jos|cie|a\\.k\\.a|cf|treas|ph|invt|elec|natl|m[ft]g|dept")
_ABBREV_BEFORE_NUMBER = "ca|figs?|prop|nos?|arts?|pp|op"
_FILE_EXTENSIONS = ("bat|bmp|c|class|cgi|cpp|dll|docx?|exe|gif|gz|h|html?|jar|java|jpe?g|mov|mp3|pdf|php|pl|"
                    "png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip")

_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u20ac": "$", "\u0080": "$"}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u0092": "'", "\u2018": "`", "\u0091": "`"})
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_QUOTE_MAP = {"\u2018": "`", "\u0091": "`", "\u2019": "'", "\u0092": "'", "\u201c": "``", "\u0093": "``",
              "\u201d": "''", "\u0094": "''", "\u00ab": "``", "\u00bb": "''", "\u2039": "`", "\u203a": "'",
              '"': "''"}


class _Rule(NamedTuple):
  """One token class: `pattern` is matched at the scan position; its `tok` group (default: the whole
  match) is the token, the rest is trailing context that counts for the longest match but is not
  consumed. `emit(tok)` gives the output tokens and how many characters they consume."""
  pattern: re.Pattern
  emit: Callable[[str], tuple[tuple[str, ...], int]]


def _keep(tok: str) -> tuple[tuple[str, ...], int]:
  return (tok,), len(tok)


def _const(out: str) -> Callable[[str], tuple[tuple[str, ...], int]]:
  return lambda tok: ((out,), len(tok))


def _split_assimilation(tok: str) -> tuple[tuple[str, ...], int]:
  """Emits the head of cannot / gonna / 'twas ("can", "gon", "'t"); the rest is scanned again."""
  head = tok[:-3] if tok.lower() in ("cannot", "'twas") else tok[:-2]
  return (head,), len(head)


def _normalize_apostrophe(tok: str) -> tuple[tuple[str, ...], int]:
  """Curly (and CP1252) single quotes to ASCII: right ones to "'", left ones to "`"."""
  return (tok.translate(_APOSTROPHES),), len(tok)


def _spaces_to_nbsp(tok: str) -> tuple[tuple[str, ...], int]:
  return (tok.replace(" ", "\u00a0"),), len(tok)


def _phone(tok: str) -> tuple[tuple[str, ...], int]:
  return (tok.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-"),), len(tok)


def _quotes(tok: str) -> tuple[tuple[str, ...], int]:
  return ("".join(_QUOTE_MAP.get(c, c) for c in tok),), len(tok)


def _hyphens(tok: str) -> tuple[tuple[str, ...], int]:
  return ("--" if 3 <= len(tok) <= 4 else tok,), len(tok)


def _sentence_final_acronym(tok: str) -> tuple[tuple[str, ...], int]:
  """A sentence-final initial loses its period ("I." -> "I"); a longer acronym keeps it."""
  return ((tok[0],), 1) if len(tok) == 2 else ((tok,), len(tok))


def _smiley(tok: str) -> tuple[tuple[str, ...], int]:
  return (tok.replace("(", "-LRB-").replace(")", "-RRB-"),), len(tok)


# Ordered token classes (earlier wins a tie in match length, as in JFlex).
_RULE_SPECS: list[tuple[str, Callable[[str], tuple[tuple[str, ...], int]]]] = [
    (r"(?i:c\+\+|[cf]#)", _keep),
    ("(?i:cannot|gonna|gotta|lemme|gimme|wanna|'twas|'tis)", _split_assimilation),
    (f"<(?:[!?][A-Za-z-][^>\\r\\n]*|{_NAME}(?:[ ]+{_ATTR})*[ ]*/?|/{_NAME})[ ]*>", _spaces_to_nbsp),  # SGML
    ("[\u0096\u0097\u2012-\u2015]|&(?:MD|mdash|ndash);", _const("--")),                # long dashes
    ("&amp;", _const("&")),
    ("&lt;", _const("<")),
    ("<<|>>", _keep),
    ("&gt;", _const(">")),
    ("&quot;|&apos;", _const("''")),
    (r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#\d+);", _keep),
    (f"(?P<tok>{WORD}){APOS}{REDAUX}", _keep),                                         # it|'s
    (f"(?P<tok>[A-Za-z]*[A-MO-Za-mo-z]){SREDAUX}", _keep),                            # ca|n't
    (WORD, _keep),
    # apostrophe words, kept whole (one class per alternative so the longest one wins)
    (f"{APOS}[nN]{APOS}", _keep),
    (f"(?P<tok>'[nN]){SPACE}", _keep),
    ("[\u0092\u2019][nN]", _keep),
    (f"[lLdDjJ]{APOS}|(?i:dunkin|somethin|ol){APOS}", _keep),
    (f"{APOS}(?i:em|till?|cause)|{APOS}[2-9]0[sS]", _keep),
    (f"[A-HJ-XZn]{APOSX}{LET}{{2,}}", _keep),
    (f"{LET}+[aeiouyAEIOUY]{APOSX}[aeiouA-Z]{LET}*", _keep),
    ("(?i:nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)", _keep),
    (f"(?P<tok>[yY]{APOS}){LET}", _keep),                                              # y'|know
    # URLs and e-mail addresses (the lexer's last URL class excludes all of "," .. "_", capitals included)
    (r"(?i:https?|ftp|mailto)://[^\s\"<>|()]+[^\s\"<>|.!?(){},-]", _keep),
    (r"www\.(?:[^\s\"<>|.!?(){},]+\.)+[A-Za-z]{2,4}(?:/[^\s\"<>|()]+[^\s\"<>|.!?(){},-])?", _keep),
    (r"(?:[^\s\"`'<>|.!?(){}$,-_]+\.)+(?:com|net|org|edu)(?:/[^\s\"<>|()]+[^\s\"<>|.!?(){},-])?", _keep),
    (r"(?:&lt;|<)?[A-Za-z0-9][^\s\"<>|(){}]*@(?:[^\s\"<>|(){}.]+\.)*[^\s\"<>|(){}.]+(?:&gt;|>)?", _keep),
    (f"@[A-Za-z_][A-Za-z_0-9]*|#{LET}+", _keep),                                        # @name, #tag
    (f"(?P<tok>'{REDAUX}){NONASCII}", _normalize_apostrophe),                          # 's
    (f"[\u0092\u2019]{REDAUX}", _normalize_apostrophe),                                # ’s
    (f"(?P<tok>{SREDAUX}){NONLET}", _normalize_apostrophe),                            # n't
    (f"(?P<tok>{APOS}\\d\\d){SPACE}", _keep),                                          # '90
    (r"\d{1,2}[-/]\d{1,2}[-/]\d{2,4}", _keep),                                         # date
    (f"[-+]?{NUM}", _keep),
    ("[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)", _keep),
    ("(?:\\d{1,4}[- \u00a0])?\\d{1,4}(?:\\\\?/|\u2044)\\d{1,4}", _spaces_to_nbsp),       # fraction
    ("[\u00bc\u00bd\u00be\u2153-\u215e]", lambda t: ((_FRACTIONS.get(t, t),), 1)),
    (r"-(?i:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:C\.D\.s|pro-|anti-|S&P-500|S&Ls|Cap'n|c'est)", _keep),
    (r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}", _keep),  # a/b
    (r"[A-Z]*\$|#", _keep),
    ("[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]",
     lambda t: ((_CURRENCY.get(t, t),), 1)),
    (f"(?P<tok>(?i:{_ABBREV_BEFORE_NUMBER})\\.)[ \t\u00a0]?\\d", _keep),                # fig.|5
    (f"(?P<tok>(?:(?i:{_ABBREV_CONTEXT})|{_ABBREV_CONTEXT_CASED})\\.)[\\s\\S]{{2}}", _keep),
    (f"(?i:{_ABBREV})\\.|v\\.", _keep),
    (f"(?P<tok>{ACRO}\\.){SPACE}+(?:{_SENTENCE_STARTS}){SPACE}", _sentence_final_acronym),
    (f"{ACRO}\\.", _keep),                                                             # initials
    (f"(?P<tok>{WORD}\\.)[,;:]", _keep),                                             # word.|,
    (f"(?P<tok>{THING}\\.)[,;:]", _keep),
    (f"(?P<tok>{AN}+(?:\\.{AN}+)*\\.(?i:{_FILE_EXTENSIONS}))(?:[\\s.?!,]|\\Z)", _keep),    # file name
    ("(?:\\(\\d{2,3}\\)[ \u00a0]?|(?:\\+\\+?)?(?:\\d{2,4}[- \u00a0])?\\d{2,4}[- \u00a0])\\d{3,4}[- \u00a0]?"
     "\\d{3,5}", _phone),                                                            # phone numbers
    (r"(?:(?:\+\+?)?\d{2,4}\.)?\d{2,4}\.\d{3,4}\.\d{3,5}", _keep),
    ("\"|''", _const("''")),                                                         # double quote
    (f"(?P<tok>[<>]?[:;=][-o*']?[()DPdpO\\\\{{@|\\[\\]]){NONASCIIAN}", _smiley),  # emoticon
    (r"[(){}\[\]]", lambda t: ((_BRACKETS[t],), 1)),
    (r"-+", _hyphens),
    ("[\u2010\u2011]", _const("-")),
    ("\\.{3,}|[\u0085\u2026]|\\.[ \u00a0](?:\\.[ \u00a0])+\\.", _const("...")),
    (r"@+|#+|_+|\*+|(?:\\\*){1,3}|[?!]+", _keep),
    ("[,;:\u3001.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002=/]", _keep),
    (f"{AN}[{_L}\\d.,]*(?:-(?:{ACRO2}\\.|{AN}+))+", _keep),                             # 1.5-meter
    (THING, _keep),
    (r"[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+", lambda t: ((t.replace("&amp;", "&"),), len(t))),  # AT&T
    (APOS, _quotes),
    ("[`\u2018-\u201f\u0082\u0084\u0091-\u0094\u2039\u203a\u00ab\u00bb]{1,2}", _quotes),
]


@functools.lru_cache(maxsize=1)
def _rules() -> tuple[_Rule, ...]:
  return tuple(_Rule(re.compile(p), emit) for p, emit in _RULE_SPECS)


# Fast path: an ASCII word and/or one punctuation mark, then a space. No other class
# can match longer, except for assimilations ("gonna") and, before a period, abbreviations/initials.
_FAST_WORD = re.compile(r"([A-Za-z]*)([.,;:?!]?)(?=[ \t\n]|\Z)")  # never empty: the scan is at a non-space
_ABBREV_LIKE = re.compile(
    f"[A-Za-z]|(?i:{_ABBREV_CONTEXT}|{_ABBREV}|{_ABBREV_BEFORE_NUMBER})|{_ABBREV_CONTEXT_CASED}")
_ASSIMILATIONS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])
_DROPPED_CATEGORIES = ("C", "Z", "Nl")


def _scan(text: str) -> list[str]:
  """Raw PTB tokens of `text` (before lower-casing and punctuation removal)."""
  rules, tokens, pos, n = _rules(), [], 0, len(text)
  while pos < n:
    ch = text[pos]
    if ch in _SPACE:
      pos += 1
      continue
    m = _FAST_WORD.match(text, pos)
    if (m and m.group(1).lower() not in _ASSIMILATIONS
        and (m.group(2) != "." or not _ABBREV_LIKE.fullmatch(m.group(1)))):
      tokens.extend(t for t in m.groups() if t)
      pos = m.end()
      continue
    best, best_len = None, 0
    for rule in rules:
      m = rule.pattern.match(text, pos)
      if m and m.end() - pos > best_len:
        best, best_len = (rule, m), m.end() - pos
    if best is None:   # a character no class accepts: a symbol token, or deleted
      if ord(ch) <= 0xFFFF and not unicodedata.category(ch).startswith(_DROPPED_CATEGORIES):
        tokens.append(ch)
      pos += 1
      continue
    rule, m = best
    out, consumed = rule.emit(m.group("tok") if "tok" in rule.pattern.groupindex else m.group())
    tokens.extend(t.replace(_SOFT_HYPHEN, "") for t in out)
    pos += consumed
  return tokens


def tokenize(text: str) -> str:
  """Tokenizes one caption like pycocoevalcap's PTBTokenizer: PTB tokens, lower-cased, punctuation removed.

  Returns the tokens joined by single spaces ("" when nothing is left).
  """
  if not isinstance(text, str):
    raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
  # pycocoevalcap joins a caption's lines with spaces; the Java lexer then sees a line break and the
  # next caption after it, which lookahead rules may read: "\n\n" stands in for them.
  tokens = (t.lower() for t in _scan(text.replace("\n", " ") + "\n\n"))
  return " ".join(t for t in tokens if t and t not in PUNCTUATIONS)

