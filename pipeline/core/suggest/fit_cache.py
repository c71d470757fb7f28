"""Fitted per-code models kept on disk, keyed by exactly what they were fitted on.

`TrainedSuggester.fit(x, y)` is a pure function of its two arrays (lbfgs logistic regression,
no randomness), and a refresh of one school year fits the same arrays again and again: the
other years' answers a year's suggestions are trained on, the folds of the school-grouped
cross-validation when no coded answer changed. So each fit's coefficients are stored under
cache_dir()/fits/<sha256 of x, y, their shapes and dtypes, the fitting settings and the
scikit-learn version>.npz, and a fit with the same key rebuilds the models from them instead:
the same float64 coefficients, so bit-identical predictions.

A missing, damaged or unreadable file means fitting again; a file that cannot be written is
skipped. Growth: at most MAX_FILES files (the least recently used are deleted; ~350 KB each for
91 codes and a 384-dimension model); deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from pipeline.core.files import store_cache_file
from pipeline.core.frame_memo import prune
from pipeline.core.suggest.model import cache_dir

log = logging.getLogger(__name__)

MAX_FILES = 200


def sklearn_version() -> str:
    """scikit-learn's version from its installed metadata: importing scikit-learn to read it
    costs about 2 s, which a process whose fits all come from this cache never pays."""
    from importlib.metadata import version

    return version("scikit-learn")


def fit_key(x: np.ndarray, y: np.ndarray, settings: str) -> str:
    h = hashlib.sha256()
    for a in (x, y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(f"{settings}|sklearn {sklearn_version()}".encode())
    return h.hexdigest()


def folder() -> Path:
    return cache_dir() / "fits"


def load(key: str) -> dict[str, np.ndarray] | None:
    path = folder() / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        os.utime(path)  # recently used: kept by the pruning
        return arrays
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("fitted-model cache %s unreadable (%s): fitting again", path, exc)
        return None


def store(key: str, arrays: dict[str, np.ndarray]) -> None:
    path = folder() / f"{key}.npz"
    if store_cache_file(path, path.with_name(f"{key}.{os.getpid()}.tmp.npz"),
                        lambda tmp: np.savez(tmp, **arrays), "fitted-model cache"):
        prune(path.parent, "*.npz", MAX_FILES)
