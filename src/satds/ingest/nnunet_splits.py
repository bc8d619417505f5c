"""Read an nnU-Net splits file: ``splits_final.pkl`` (nnU-Net v1) or ``splits_final.json`` (v2).

Both hold a list of folds, each a mapping of split name (``train``, ``val``; some releases add ``test``) to
case names. A pickle from a download is untrusted: it is read with an unpickler that can build only the
types such a file holds (lists, dicts, ``collections.OrderedDict``, numpy string arrays) and refuses any
other global, so loading it cannot run code.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

from ..errors import ReadError, SpecError


def _allowed() -> dict[tuple[str, str], object]:
    import collections

    import numpy as np

    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array reconstructor, under either module name
    return {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
    }


class _SplitsUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self.allowed = _allowed()

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a splits file")
        return self.allowed[(module, name)]


def read_nnunet_splits(path: Path | str) -> list[dict[str, list[str]]]:
    """The folds of an nnU-Net splits file, each ``{split name: [case name, ...]}`` (names as plain strings)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ReadError(f"the nnU-Net splits file cannot be read ({type(e).__name__}: {e})", file=str(path)) from None
    try:
        if path.suffix == ".pkl":
            folds = _SplitsUnpickler(io.BytesIO(data)).load()
        else:
            folds = json.loads(data)
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError) as e:
        raise SpecError(f"{path.name}: not an nnU-Net splits file ({e})") from None
    if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
        raise SpecError(f"{path.name}: an nnU-Net splits file is a list of folds, each mapping split names to case names")
    out = []
    for f in folds:
        fold = {}
        for split, names in f.items():
            names = list(names.tolist() if hasattr(names, "tolist") else names)
            if not all(isinstance(n, str) for n in names):
                raise SpecError(f"{path.name}: split {split!r} holds names that are not strings")
            fold[str(split)] = names
        out.append(fold)
    return out
