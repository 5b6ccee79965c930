"""The four-language glossary (notebooks/glossary.md): complete rows, and true claims about the documents.

The glossary's convention (its legend says the same):
- every table whose header starts with ``| English |`` has the columns English, Korean, Japanese,
  Chinese, symbol, documents, notebooks;
- a language cell is a ``;``-separated list of entries; an entry is either a string quoted from the
  documents, ```text` (001, 004)`` (optionally ``(004, sic)``, and ``*English kept*`` when the string
  has no Korean/Japanese/Chinese letters), or a term not from the documents ending in † (standard
  term) or ‡ (descriptive translation);
- the documents column is the union of the codes cited in the row's language cells, or "—";
- the notebooks column holds links ``[03](03_gradcam.ipynb)``.

Each quoted string must occur in each document it cites (case-insensitive, whitespace-normalised,
LaTeX's ``\\ `` read as a space); each †/‡ term must not occur in the documents of its language.
"""
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "notebooks" / "glossary.md"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

COLUMNS = ["English", "Korean", "Japanese", "Chinese", "symbol", "documents", "notebooks"]
LANGUAGES = ["Korean", "Japanese", "Chinese"]

QUOTED = re.compile(
    r"^`(?P<text>[^`]+)`\s*\((?P<codes>\d{3}(?:,\s*\d{3})*)(?P<sic>,\s*sic)?\)"
    r"(?P<kept>\s*\*English kept\*)?$"
)
STANDARD = re.compile(r"^(?P<text>[^`]+?)\s*(?P<mark>[†‡])$")
NOTEBOOK_LINK = re.compile(r"\[(?P<label>[^\]]+)\]\((?P<target>[^)]+)\)")
DOCUMENTS = re.compile(r"^(—|\d{3}(?:, \d{3})*)$")
# Hangul syllables and jamo, kana, CJK ideographs: a string with none of them is "English kept".
CJK = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def normalise(text):
    """Compare as the legend says: NFC, LaTeX's escaped space read as a space, spacing collapsed, case folded."""
    text = unicodedata.normalize("NFC", text).replace("\\ ", " ")
    return re.sub(r"\s+", " ", text).strip().casefold()


def split_row(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_tables(text):
    """Every Markdown table as (header cells, [(line number, row cells), ...])."""
    tables, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1].strip()):
            header, rows, i = split_row(lines[i]), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append((i + 1, split_row(lines[i])))
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


def parse_entries(cell):
    """A language cell as a list of ('quoted', text, codes, kept) / ('standard', text, mark) / ('bad', raw)."""
    entries = []
    for raw in (part.strip() for part in cell.split(";")):
        m = QUOTED.match(raw)
        if m:
            codes = tuple(code.strip() for code in m["codes"].split(","))
            entries.append(("quoted", m["text"], codes, bool(m["kept"])))
            continue
        m = STANDARD.match(raw)
        if m:
            entries.append(("standard", m["text"], m["mark"]))
            continue
        entries.append(("bad", raw))
    return entries


def load_glossary():
    assert GLOSSARY.is_file(), f"glossary not found: expected {GLOSSARY}"
    text = GLOSSARY.read_text(encoding="utf-8")
    code_languages, terms = {}, []
    for header, rows in read_tables(text):
        if header[:2] == ["code", "language"]:
            code_languages.update({cells[0]: cells[1] for _, cells in rows})
        elif header and header[0] == "English":
            names = [next((c for c in COLUMNS if c in h), h) for h in header]
            assert names == COLUMNS, (
                f"glossary table header {header} has the wrong columns: expected, in this order, {COLUMNS}"
            )
            for line, cells in rows:
                assert len(cells) == len(COLUMNS), (
                    f"glossary line {line} has {len(cells)} cells: expected {len(COLUMNS)} ({COLUMNS}); "
                    "a '|' inside a cell breaks the table"
                )
                row = dict(zip(COLUMNS, cells))
                row["line"] = line
                row["entries"] = {lang: parse_entries(row[lang]) for lang in LANGUAGES}
                terms.append(row)
    return code_languages, terms


CODE_LANGUAGES, TERMS = load_glossary()


def cited(row):
    """Every (language, quoted string, document code) claim of a row."""
    return [
        (lang, entry[1], code)
        for lang in LANGUAGES
        for entry in row["entries"][lang]
        if entry[0] == "quoted"
        for code in entry[2]
    ]


def where(row):
    return f"glossary line {row['line']} ({row['English']!r})"


@pytest.fixture(scope="module")
def documents():
    """The five source documents' texts by code, from ../shared/seeds/ beside the checkout."""
    if not SEEDS.is_dir():
        pytest.skip(
            f"source documents not found at {SEEDS} (../shared/seeds/ beside the repository): "
            "the glossary's claims about them cannot be checked without them"
        )
    texts = {}
    for code in CODE_LANGUAGES:
        files = sorted(SEEDS.glob(f"{code}_*.txt"))
        assert len(files) == 1, f"document {code}: expected one file {code}_*.txt in {SEEDS}, found {files}"
        texts[code] = files[0].read_text(encoding="utf-8")
    return texts


def test_at_least_40_terms():
    assert len(TERMS) >= 40, f"the glossary has {len(TERMS)} terms: expected at least 40"


def test_code_table_lists_the_five_documents():
    assert sorted(CODE_LANGUAGES) == ["000", "001", "002", "003", "004"], (
        f"the glossary's document table lists {sorted(CODE_LANGUAGES)}: expected 000-004"
    )
    assert set(CODE_LANGUAGES.values()) == set(LANGUAGES), (
        f"document languages {sorted(set(CODE_LANGUAGES.values()))}: expected {LANGUAGES}"
    )


def test_no_duplicate_english_terms():
    seen = {}
    for row in TERMS:
        key = normalise(row["English"])
        assert key not in seen, f"{where(row)} repeats the English term of glossary line {seen[key]}"
        seen[key] = row["line"]


def test_every_row_is_complete_and_follows_the_convention():
    for row in TERMS:
        assert row["English"], f"{where(row)}: the English term is empty"
        assert row["symbol"], f"{where(row)}: the symbol cell is empty (write — where there is none)"
        for lang in LANGUAGES:
            entries = row["entries"][lang]
            assert entries and row[lang], f"{where(row)}: the {lang} cell is empty"
            bad = [e[1] for e in entries if e[0] == "bad"]
            assert not bad, (
                f"{where(row)}: {lang} entries {bad} follow neither form: expected `text` (001) "
                "for a string from the documents or term† / term‡ for one that is not"
            )
        assert DOCUMENTS.match(row["documents"]), (
            f"{where(row)}: documents cell {row['documents']!r}: expected codes like '000, 003' or '—'"
        )
        assert NOTEBOOK_LINK.search(row["notebooks"]), (
            f"{where(row)}: no notebook: expected links like [03](03_gradcam.ipynb)"
        )


def test_quoted_strings_cite_documents_of_their_language():
    for row in TERMS:
        for lang, text, code in cited(row):
            assert CODE_LANGUAGES.get(code) == lang, (
                f"{where(row)}: the {lang} cell quotes {text!r} from document {code}, "
                f"which is {CODE_LANGUAGES.get(code, 'not a document')}: cite a {lang} document"
            )


def test_english_kept_marks_exactly_the_latin_script_quotes():
    for row in TERMS:
        for lang in LANGUAGES:
            for entry in row["entries"][lang]:
                if entry[0] != "quoted":
                    continue
                latin = not CJK.search(entry[1])
                assert entry[3] == latin, (
                    f"{where(row)}: {lang} quote {entry[1]!r} "
                    + ("is written in English: mark it *English kept*" if latin
                       else "is not English: remove *English kept*")
                )


def test_documents_column_is_the_union_of_the_citations():
    for row in TERMS:
        codes = sorted({code for _, _, code in cited(row)})
        expected = ", ".join(codes) if codes else "—"
        assert row["documents"] == expected, (
            f"{where(row)}: documents column says {row['documents']!r} but the quoted strings cite {expected!r}"
        )


def test_every_document_is_cited():
    codes = {code for row in TERMS for _, _, code in cited(row)}
    missing = sorted(set(CODE_LANGUAGES) - codes)
    assert not missing, f"documents {missing} are cited by no term: expected every document's terms"


def test_every_notebook_named_exists():
    for row in TERMS:
        for m in NOTEBOOK_LINK.finditer(row["notebooks"]):
            target = GLOSSARY.parent / m["target"]
            assert target.suffix == ".ipynb" and target.is_file(), (
                f"{where(row)}: notebook link {m['target']!r} does not name a notebook in {GLOSSARY.parent}"
            )
            assert m["target"].split("_")[0] == m["label"], (
                f"{where(row)}: link [{m['label']}]({m['target']}): expected the label "
                f"{m['target'].split('_')[0]!r}, the notebook's number"
            )


def test_every_quoted_string_occurs_in_the_documents_it_cites(documents):
    texts = {code: normalise(text) for code, text in documents.items()}
    missing = [
        f"{where(row)}: {text!r} not in document {code}"
        for row in TERMS
        for _, text, code in cited(row)
        if normalise(text) not in texts[code]
    ]
    assert not missing, "quoted strings absent from the documents they cite:\n" + "\n".join(missing)


def test_terms_marked_not_from_the_documents_are_not_in_them(documents):
    found = []
    for row in TERMS:
        for lang in LANGUAGES:
            for entry in row["entries"][lang]:
                if entry[0] != "standard":
                    continue
                codes = [c for c, l in CODE_LANGUAGES.items() if l == lang and normalise(entry[1]) in normalise(documents[c])]
                if codes:
                    found.append(f"{where(row)}: {entry[1]!r}{entry[2]} occurs in {codes}: quote it as `…` ({codes[0]})")
    assert not found, "terms marked † or ‡ that the documents do use:\n" + "\n".join(found)


def test_document_languages_match_their_script(documents):
    """The code table's languages agree with the documents' letters (Hangul, kana, Han only)."""
    for code, text in documents.items():
        hangul = len(re.findall(r"[\uac00-\ud7af]", text))
        kana = len(re.findall(r"[\u3040-\u30ff]", text))
        han = len(re.findall(r"[\u4e00-\u9fff]", text))
        script = "Korean" if hangul > 100 else "Japanese" if kana > 50 else "Chinese" if han > 100 else "unknown"
        assert CODE_LANGUAGES[code] == script, (
            f"document {code}: the glossary says {CODE_LANGUAGES[code]}, its letters say {script}"
        )
