"""Rewrite the FastSpeech2 TFLite graph so that plain LiteRT can run it, and cache the result.

The published ``fastspeech2_quan.tflite`` was converted with dropout still active on the
F0 and energy embeddings: two ``FlexRandomUniform`` ops (TensorFlow ops, which LiteRT
cannot run without the Flex delegate) draw the keep mask, and a ``dropout/Const`` of 2.0
(= 1 / (1 - rate)) rescales the kept values. ``patch_fastspeech2`` makes it the usual
inference-time dropout (identity, deterministic):

* each random op becomes a builtin ``FILL`` of 1.0 over the same shape, so every
  element passes the ``>= 0.5`` keep test;
* the rescale constant becomes 1.0.

It also adds two model inputs, ``f0_offsets`` and ``energy_offsets`` (float32, shape
[1]), added to the predicted (normalised) F0 and energy right before they are embedded.
They move the pitch level and the vocal effort; one patched model serves every emotion.

The patched model is written once per (source model, ``PATCH_VERSION``) into a cache
directory, atomically, so concurrent processes at worst both write the same file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..core.files import atomic_write, file_sha256

_LOGGER = logging.getLogger(__name__)

# Bump whenever patch_fastspeech2 changes what it writes.
PATCH_VERSION = 1

F0_OFFSETS = "f0_offsets"
ENERGY_OFFSETS = "energy_offsets"
_RANDOM_OP = b"FlexRandomUniform"


class PatchError(RuntimeError):
    """The model does not have the structure the rewrite expects."""


def patched_name(source_hash: str) -> str:
    return f"fastspeech2-{source_hash[:16]}-p{PATCH_VERSION}.tflite"


def ensure_patched(source: Path, cache_dir: Path, source_hash: str | None = None) -> tuple[Path, bool]:
    """Return ``(path of the patched model, whether this call wrote it)``."""
    source_hash = source_hash or file_sha256(source)
    target = cache_dir / patched_name(source_hash)
    if target.is_file():
        return target, False
    data = patch_fastspeech2(source.read_bytes())
    # atomic: a racing writer replaces it with identical bytes
    atomic_write(target, data, prefix=".fastspeech2-", suffix=".tflite.tmp")
    _LOGGER.info("wrote patched acoustic model %s", target)
    return target, True


# ------------------------------------------------------------------------------ the rewrite
def patch_fastspeech2(data: bytes) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromObj(s.Model.GetRootAs(data, 0))
    if len(model.subgraphs) != 1:
        raise PatchError(f"expected one subgraph, found {len(model.subgraphs)}")
    g = model.subgraphs[0]
    p = _Patcher(s, model, g)

    random_ops = [op for op in g.operators if p.custom_code(op) == _RANDOM_OP]
    if not random_ops:
        raise PatchError("no FlexRandomUniform op found (already patched, or a different model?)")
    one = p.add_const("announcer/keep_all", np.float32(1.0))
    fill = p.opcode(s.BuiltinOperator.FILL)
    for op in random_ops:
        shape = op.inputs[0]
        op.opcodeIndex = fill
        op.inputs = np.array([shape, one], np.int32)
        op.builtinOptionsType = s.BuiltinOptions.FillOptions
        op.builtinOptions = s.FillOptionsT()
        op.customOptions = None

    scales = [i for i, t in enumerate(g.tensors) if t.name.decode().endswith("dropout/Const")]
    if not scales:
        raise PatchError("no dropout/Const tensor found")
    for i in scales:
        g.tensors[i].buffer = p.add_buffer(np.float32(1.0))

    p.add_offset_input("f0_predictor", F0_OFFSETS)
    p.add_offset_input("energy_predictor", ENERGY_OFFSETS)
    p.drop_unused_opcodes()

    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _Patcher:
    def __init__(self, schema: Any, model: Any, graph: Any) -> None:
        self.s = schema
        self.model = model
        self.g = graph

    def custom_code(self, op: Any) -> bytes | None:
        code: bytes | None = self.model.operatorCodes[op.opcodeIndex].customCode
        return code

    def opcode(self, builtin: int) -> int:
        for i, oc in enumerate(self.model.operatorCodes):
            if oc.customCode is None and max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin:
                return i
        oc = self.s.OperatorCodeT()
        oc.builtinCode = builtin
        oc.deprecatedBuiltinCode = min(builtin, self.s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
        oc.version = 1
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    def add_buffer(self, value: np.ndarray | np.generic | None = None) -> int:
        buf = self.s.BufferT()
        if value is not None:
            buf.data = np.frombuffer(np.asarray(value).tobytes(), np.uint8)
        self.model.buffers.append(buf)
        return len(self.model.buffers) - 1

    def add_tensor(self, name: str, shape: list[int], buffer: int, signature: list[int] | None = None) -> int:
        t = self.s.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, np.int32)
        if signature is not None:
            t.shapeSignature = np.array(signature, np.int32)
        t.type = self.s.TensorType.FLOAT32
        t.buffer = buffer
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    def add_const(self, name: str, value: np.generic) -> int:
        return self.add_tensor(name, [], self.add_buffer(value))

    def add_offset_input(self, predictor: str, input_name: str) -> None:
        """``x' = x + <input>`` where x is the (ratio-scaled) prediction fed to the embedding."""
        g = self.g
        names = [t.name.decode() for t in g.tensors]
        squeeze = names.index(f"{predictor}/Squeeze") if f"{predictor}/Squeeze" in names else -1
        producer = next(
            (
                k
                for k, op in enumerate(g.operators)
                if squeeze in list(op.inputs) and self.builtin(op) == self.s.BuiltinOperator.MUL
            ),
            None,
        )
        if producer is None:
            raise PatchError(f"cannot find the output of {predictor}")
        x = int(g.operators[producer].outputs[0])
        offsets = self.add_tensor(input_name, [1], self.add_buffer(), [1])
        src = g.tensors[x]
        shifted = self.add_tensor(
            f"{predictor}/announcer_offset",
            list(src.shape),
            self.add_buffer(),
            None if src.shapeSignature is None else list(src.shapeSignature),
        )
        for op in g.operators:
            op.inputs = np.array([shifted if i == x else i for i in op.inputs], np.int32)
        add = self.s.OperatorT()
        add.opcodeIndex = self.opcode(self.s.BuiltinOperator.ADD)
        add.inputs = np.array([x, offsets], np.int32)
        add.outputs = np.array([shifted], np.int32)
        add.builtinOptionsType = self.s.BuiltinOptions.AddOptions
        add.builtinOptions = self.s.AddOptionsT()
        g.operators.insert(producer + 1, add)  # operators run in list order
        g.inputs = np.append(np.asarray(g.inputs, np.int32), np.int32(offsets))

    def builtin(self, op: Any) -> int:
        oc = self.model.operatorCodes[op.opcodeIndex]
        code: int = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        return code

    def drop_unused_opcodes(self) -> None:
        used = sorted({op.opcodeIndex for op in self.g.operators})
        remap = {old: new for new, old in enumerate(used)}
        self.model.operatorCodes = [self.model.operatorCodes[i] for i in used]
        for op in self.g.operators:
            op.opcodeIndex = remap[op.opcodeIndex]


def custom_ops(data: bytes) -> list[str]:
    """Names of the custom (non-builtin) op codes a model declares (for tests and diagnostics)."""
    from ai_edge_litert import schema_py_generated as s

    model = s.Model.GetRootAs(data, 0)
    out = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i).CustomCode()
        if code is not None:
            out.append(code.decode())
    return out
