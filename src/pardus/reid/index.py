"""The catalogue's descriptor index: every feature of every catalogue photo, in one faiss search.

HotSpotter's key idea is to search all catalogue descriptors at once (one nearest-neighbour query
per query feature against the whole catalogue) instead of matching photo by photo; the cost then
grows with the logarithm of the catalogue, not with its size. Here that index has two segments:

- **main**: a faiss HNSW graph over 8-bit descriptors (``QT_8bit_direct``: RootSIFT is already
  uint8, so storage is lossless and needs no training). HNSW takes insertions one at a time and
  its search cost grows about logarithmically, which is what keeps a 10,000-photo query fast.
- **delta**: the photos added since the main graph was last written, held in an exact flat index
  rebuilt in memory from their feature files at load. Confirming one photo therefore writes one
  small feature file and the manifest, not the whole graph; when the delta grows past
  ``fold_threshold`` descriptors they are inserted into the graph (insertion, not a rebuild) and
  the graph is written once.

Each catalogue photo ("annotation", as HotSpotter and Wildbook call it) carries the individual it
shows, its flank and species; those labels live in the manifest and can change (merge, split,
reject) without touching the descriptors. Photos are never deleted from the graph; a withdrawn
photo is masked out of every search.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from pardus.reid.features import ChipFeatures

DIM = 128
MANIFEST_VERSION = 1


@dataclass
class Annotation:
    """One catalogue photo of one animal: which individual, which side, where its features start."""

    id: int
    individual: str
    flank: str | None = None
    species: str | None = None
    active: bool = True
    start: int = 0
    count: int = 0
    night: bool = False
    media_id: str | None = None
    observation_id: str | None = None  # the confirmed Observation this photo stands for
    # the camera (deployment) that took it: a query from the same camera must not be matched on
    # the rocks both photos share (pardus.reid.match.match, ``camera``)
    camera: str | None = None


@dataclass
class Neighbours:
    """k nearest catalogue descriptors of each query descriptor (``-1`` where fewer were found)."""

    dist: np.ndarray  # (n, k) Euclidean distance, RootSIFT units (0 .. ~1.4)
    ann: np.ndarray  # (n, k) row index into ``FeatureIndex.annotations``
    feat: np.ndarray  # (n, k) feature index inside that annotation
    gid: np.ndarray  # (n, k) global descriptor id (for per-descriptor arrays such as weights)


class FeatureIndex:
    """All catalogue descriptors, searchable at once, growing photo by photo.

    ``root`` is a folder (e.g. ``data_dir / "reid"``); ``None`` keeps everything in memory (tests,
    benchmarks). Open it with :meth:`open`; it is safe to open read-only from several processes,
    and writers take a file lock.
    """

    def __init__(self, root: Path | None, params_key: str, *, hnsw_m: int = 16, ef_construction: int = 40,
                 ef_search: int = 64, fold_threshold: int = 20_000) -> None:
        self.root = Path(root) if root is not None else None
        self.params_key = params_key
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.fold_threshold = fold_threshold
        self.annotations: list[Annotation] = []
        self._row: dict[int, int] = {}
        self._main = self._new_main()
        self._n_main = 0
        self._delta = _DeltaVectors()
        self._owners = _Growable()
        self._cache: dict[int, ChipFeatures] = {}

    # --- opening and saving -------------------------------------------------------------

    @classmethod
    def open(cls, root: Path | None, params_key: str, **kwargs: int) -> FeatureIndex:
        """Load the index in ``root`` (or start an empty one); refuses an index built with other features."""
        idx = cls(root, params_key, **kwargs)
        if root is None or not (Path(root) / "manifest.json").exists():
            return idx
        manifest = json.loads((Path(root) / "manifest.json").read_text())
        if manifest.get("params_key") != params_key:
            raise ValueError(
                f"the re-identification index in {root} was built with features {manifest.get('params_key')!r}, "
                f"not {params_key!r}; run `pardus reid reindex` to rebuild it from the catalogue photos"
            )
        idx.annotations = [Annotation(**a) for a in manifest["annotations"]]
        idx._row = {a.id: i for i, a in enumerate(idx.annotations)}
        main_path = Path(root) / "main.faiss"
        n_main = 0
        if main_path.exists():
            idx._main = faiss.read_index(str(main_path))
            n_main = idx._main.ntotal
        idx._n_main = n_main
        idx._rebuild_owners()
        wpath = Path(root) / "weights.f16"
        if wpath.exists():
            w = np.fromfile(wpath, dtype=np.float16).astype(np.float32)
            if w.size < idx.ntotal:
                raise ValueError(f"index weights in {root} are shorter than the index; run `pardus reid reindex`")
            idx._owners.weight[: idx.ntotal] = w[: idx.ntotal]
        # photos added after the graph was written are searched exactly, from their feature files
        for a in idx.annotations:
            if a.start + a.count > n_main:
                if a.start < n_main:
                    raise ValueError(f"index in {root} is inconsistent at annotation {a.id}; run `pardus reid reindex`")
                feats = idx.features(a.id)
                idx._delta.add(feats.desc)
        idx._main.hnsw.efSearch = idx.ef_search
        return idx

    def _new_main(self) -> faiss.Index:
        main = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_8bit_direct, self.hnsw_m)
        main.hnsw.efConstruction = self.ef_construction
        main.hnsw.efSearch = self.ef_search
        return main

    def _rebuild_owners(self) -> None:
        self._owners = _Growable()
        for row, a in enumerate(self.annotations):
            if a.start != self._owners.size:
                raise ValueError(f"index manifest is inconsistent at photo {a.id}; run `pardus reid reindex`")
            self._owners.extend(row, a.count)

    @property
    def _owner_ann(self) -> np.ndarray:
        return self._owners.ann[: self._owners.size]

    @property
    def _owner_feat(self) -> np.ndarray:
        return self._owners.feat[: self._owners.size]

    @property
    def weights(self) -> np.ndarray:
        """Each catalogue descriptor's belief of lying on the animal, off the scenery (``pardus.reid.foreground``)."""
        return self._owners.weight[: self._owners.size]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.root is None:
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def save(self) -> None:
        """Write the manifest (and the graph, if it changed); cheap unless a fold just happened."""
        if self.root is None:
            return
        with self._locked():
            self._save_manifest()

    def _save_manifest(self) -> None:
        assert self.root is not None
        manifest = {
            "version": MANIFEST_VERSION,
            "params_key": self.params_key,
            "annotations": [asdict(a) for a in self.annotations],
        }
        self._write_atomic(self.root / "manifest.json", json.dumps(manifest).encode())

    # --- features on disk -----------------------------------------------------------------

    def _feature_path(self, ann_id: int) -> Path:
        assert self.root is not None
        return self.root / "features" / f"{ann_id % 256:02x}" / f"{ann_id}.npz"

    def features(self, ann_id: int) -> ChipFeatures:
        """The stored features of one catalogue photo (kept in memory once read)."""
        if ann_id in self._cache:
            return self._cache[ann_id]
        if self.root is None:
            raise KeyError(f"annotation {ann_id} is not in this in-memory index")
        path = self._feature_path(ann_id)
        if not path.exists():
            raise FileNotFoundError(
                f"features of catalogue photo {ann_id} are missing ({path}); run `pardus reid reindex`")
        with np.load(path) as z:
            feats = ChipFeatures.from_arrays(dict(z))
        if len(self._cache) > 4096:
            self._cache.pop(next(iter(self._cache)))
        self._cache[ann_id] = feats
        return feats

    # --- growing and relabelling --------------------------------------------------------

    def __contains__(self, ann_id: int) -> bool:
        return ann_id in self._row

    def __len__(self) -> int:
        return len(self.annotations)

    @property
    def ntotal(self) -> int:
        return self._owners.size

    def add(self, ann: Annotation, feats: ChipFeatures, *, save: bool = True) -> None:
        """Add one catalogue photo; its descriptors are searchable at once, nothing is rebuilt."""
        if ann.id in self._row:
            raise ValueError(f"catalogue photo {ann.id} is already in the index")
        if feats.params_key and feats.params_key != self.params_key:
            raise ValueError(f"features made with {feats.params_key!r} cannot go into a {self.params_key!r} index")
        if ann.camera is None:
            ann.camera = feats.camera
        with self._locked():
            ann.start = self.ntotal
            ann.count = len(feats)
            ann.night = bool(feats.night)
            if self.root is not None:
                path = self._feature_path(ann.id)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npz")
                np.savez(tmp, **feats.to_arrays())
                os.replace(tmp, path)
                self._append_weights(feats.weight)
            self._cache[ann.id] = feats
            self._row[ann.id] = len(self.annotations)
            self.annotations.append(ann)
            self._owners.extend(self._row[ann.id], ann.count, feats.weight)
            if ann.count:
                self._delta.add(feats.desc)
            if self._delta.ntotal >= self.fold_threshold:
                self._fold()
            if save and self.root is not None:
                self._save_manifest()

    def _append_weights(self, w: np.ndarray) -> None:
        assert self.root is not None
        wpath = self.root / "weights.f16"
        # a crash may have left a longer file than the manifest knows; cut it back first
        expected = self.ntotal * 2
        if wpath.exists() and wpath.stat().st_size != expected:
            with open(wpath, "r+b") as fh:
                fh.truncate(expected)
        with open(wpath, "ab") as fh:
            fh.write(np.asarray(w, np.float16).tobytes())

    def add_many(self, items: Iterable[tuple[Annotation, ChipFeatures]]) -> None:
        """Add several photos and write the manifest once."""
        for ann, feats in items:
            self.add(ann, feats, save=False)
        self.save()

    def _fold(self) -> None:
        """Insert the delta's descriptors into the HNSW graph and write the graph once."""
        if self._delta.ntotal == 0:
            return
        self._main.add(self._delta.vectors())
        self._n_main = self._main.ntotal
        self._delta.reset()
        if self.root is not None:
            tmp = self.root / "main.faiss.tmp"
            faiss.write_index(self._main, str(tmp))
            os.replace(tmp, self.root / "main.faiss")

    def fold(self) -> None:
        """Move every pending photo into the graph now (e.g. before a benchmark's timing)."""
        with self._locked():
            self._fold()
            if self.root is not None:
                self._save_manifest()

    def _ann(self, ann_id: int) -> Annotation:
        try:
            return self.annotations[self._row[ann_id]]
        except KeyError:
            raise KeyError(f"catalogue photo {ann_id} is not in the index") from None

    def relabel(self, ann_ids: Iterable[int], individual: str, *, save: bool = True) -> None:
        """Move photos to another individual (merge, split, corrected confirmation)."""
        for i in ann_ids:
            self._ann(i).individual = individual
        if save:
            self.save()

    def set_flank(self, ann_id: int, flank: str | None, *, save: bool = True) -> None:
        self._ann(ann_id).flank = flank
        if save:
            self.save()

    def set_active(self, ann_ids: Iterable[int], active: bool, *, save: bool = True) -> None:
        """Withdraw photos from matching (or bring them back); descriptors stay, masked."""
        for i in ann_ids:
            self._ann(i).active = active
        if save:
            self.save()

    def annotation(self, ann_id: int) -> Annotation:
        return self._ann(ann_id)

    # --- searching -----------------------------------------------------------------------

    def allowed_rows(self, *, flank: str | None = None, species: str | None = None,
                     exclude: Iterable[int] = (), individuals: Iterable[str] | None = None) -> np.ndarray:
        """Which catalogue photos a query may match: active, same species, and never the other flank.

        A photo whose flank is not known stays allowed (it may show either side). ``individuals``
        limits the search to a shortlist (e.g. the nearest individuals by a learned embedding).
        """
        n = len(self.annotations)
        ok = np.fromiter((a.active for a in self.annotations), bool, n)
        if flank in ("left", "right"):
            other = "right" if flank == "left" else "left"
            ok &= np.fromiter((a.flank != other for a in self.annotations), bool, n)
        if species:
            ok &= np.fromiter((a.species in (None, species) for a in self.annotations), bool, n)
        if individuals is not None:
            keep = set(individuals)
            ok &= np.fromiter((a.individual in keep for a in self.annotations), bool, n)
        for ann_id in exclude:
            row = self._row.get(ann_id)
            if row is not None:
                ok[row] = False
        return ok

    def search(self, desc: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Neighbours:
        """The ``k`` nearest allowed catalogue descriptors of each query descriptor, one batch search."""
        n = desc.shape[0]
        dist = np.full((n, k), np.inf, np.float32)
        ids = np.full((n, k), -1, np.int64)
        if n == 0 or self.ntotal == 0:
            return self._to_neighbours(dist, ids)
        q = desc.astype(np.float32)
        desc_ok = None
        if allowed is not None and not allowed.all():
            desc_ok = allowed[self._owner_ann]
        parts = []
        if self._n_main:
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, 2 * k))
            if desc_ok is not None:
                bitmap = np.packbits(desc_ok[: self._n_main], bitorder="little")
                sel = faiss.IDSelectorBitmap(self._n_main, faiss.swig_ptr(bitmap))
                params.sel = sel
            d, i = self._main.search(q, k, params=params)
            parts.append((d, i))
        if self._delta.ntotal:
            vecs = self._delta.vectors()
            local = np.arange(vecs.shape[0])
            if desc_ok is not None:
                local = np.nonzero(desc_ok[self._n_main:])[0]
                vecs = vecs[local]
            if vecs.shape[0]:
                # exact search with BLAS (faiss's flat search with an id filter falls back to a scalar loop)
                kk = min(k, vecs.shape[0])
                d, i = faiss.knn(q, vecs, kk)
                i = np.where(i >= 0, local[np.maximum(i, 0)] + self._n_main, -1)
                if kk < k:
                    d = np.pad(d, ((0, 0), (0, k - kk)), constant_values=np.inf)
                    i = np.pad(i, ((0, 0), (0, k - kk)), constant_values=-1)
                parts.append((d, i))
        if not parts:
            return self._to_neighbours(dist, ids)
        all_d = np.concatenate([p[0] for p in parts], axis=1)
        all_i = np.concatenate([p[1] for p in parts], axis=1)
        all_d = np.where(all_i >= 0, all_d, np.inf)
        order = np.argsort(all_d, axis=1, kind="stable")[:, :k]
        dist = np.take_along_axis(all_d, order, axis=1)
        ids = np.take_along_axis(all_i, order, axis=1)
        return self._to_neighbours(dist, ids)

    def _to_neighbours(self, dist2: np.ndarray, ids: np.ndarray) -> Neighbours:
        valid = ids >= 0
        safe = np.where(valid, ids, 0)
        ann = np.where(valid, self._owner_ann[safe] if self.ntotal else 0, -1)
        feat = np.where(valid, self._owner_feat[safe] if self.ntotal else 0, -1)
        # faiss returns squared L2 in uint8 units; RootSIFT vectors have norm 512 there
        dist = np.sqrt(np.maximum(dist2, 0)) / 512.0
        dist = np.where(valid, dist, np.inf).astype(np.float32)
        return Neighbours(dist=dist, ann=ann.astype(np.int64), feat=feat.astype(np.int64), gid=safe.astype(np.int64))

    def row_of(self, ann_id: int) -> int:
        return self._row[ann_id]


class _Growable:
    """Descriptor -> (photo row, feature number, on-animal weight), grown by doubling so adding a
    photo costs the size of that photo, not of the catalogue."""

    def __init__(self) -> None:
        self.ann = np.zeros(1024, np.int32)
        self.feat = np.zeros(1024, np.int32)
        self.weight = np.ones(1024, np.float32)
        self.size = 0

    def extend(self, row: int, count: int, weights: np.ndarray | None = None) -> None:
        need = self.size + count
        if need > self.ann.shape[0]:
            cap = max(need, 2 * self.ann.shape[0])
            self.ann = np.resize(self.ann, cap)
            self.feat = np.resize(self.feat, cap)
            self.weight = np.resize(self.weight, cap)
        self.ann[self.size:need] = row
        self.feat[self.size:need] = np.arange(count, dtype=np.int32)
        self.weight[self.size:need] = 1.0 if weights is None else weights
        self.size = need


class _DeltaVectors:
    """The not-yet-folded descriptors as one float32 array (grown by doubling)."""

    def __init__(self) -> None:
        self._buf = np.zeros((0, DIM), np.float32)
        self.ntotal = 0

    def add(self, desc: np.ndarray) -> None:
        need = self.ntotal + desc.shape[0]
        if need > self._buf.shape[0]:
            grown = np.zeros((max(need, 2 * self._buf.shape[0], 4096), DIM), np.float32)
            grown[: self.ntotal] = self._buf[: self.ntotal]
            self._buf = grown
        self._buf[self.ntotal:need] = desc
        self.ntotal = need

    def vectors(self) -> np.ndarray:
        return self._buf[: self.ntotal]

    def reset(self) -> None:
        self._buf = np.zeros((0, DIM), np.float32)
        self.ntotal = 0
