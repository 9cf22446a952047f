"""The competition's data-folder layout, in one place: names, readers, writers, ownership.

A data folder as the platform mounts it, and as the competition ships training data::

    images/<image_id>.png        1280x1024 RGB, one spacecraft each (.jpg/.jpeg for synthetic sets)
    submission_format.csv        image_id,xmin,ymin,xmax,ymax with every box zero
    train_labels.csv             image_id,xmin,ymin,xmax,ymax (training data only)
    train_metadata.csv           image_id,spacecraft_id,background_id (training data only)

A local test set keeps its labels outside what the sandbox mounts: ``data/`` (images +
submission_format.csv) and ``data_labels/test_labels.csv`` (+ ``test_metadata.csv``).

**Posebowl never deletes or overwrites a file it did not make.** Every command that writes a
data set into a folder first :func:`claim`\\ s it: a folder holding anything posebowl did not
write is refused, and ``force`` replaces only the files listed in the folder's manifest
(:data:`MANIFEST`), which records what posebowl wrote there. :func:`claim_files` does the same
for commands that write a few named files into a folder shared with other things (the report).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from posebowl.errors import InputError
from posebowl.rules import BOX_COLUMNS, COLUMNS, INDEX_COLUMN

IMAGES_DIR = "images"
FORMAT_CSV = "submission_format.csv"
TRAIN_LABELS = "train_labels.csv"
TRAIN_METADATA = "train_metadata.csv"
TEST_LABELS = "test_labels.csv"
TEST_METADATA = "test_metadata.csv"
#: label and metadata file names a labelled folder may use, in the order they are looked for
LABEL_NAMES = (TRAIN_LABELS, TEST_LABELS, "labels.csv")
METADATA_NAMES = (TRAIN_METADATA, TEST_METADATA, "metadata.csv")
METADATA_COLUMNS = ("spacecraft_id", "background_id")
META_COLUMNS = (INDEX_COLUMN, *METADATA_COLUMNS)
#: image files a folder may hold (the competition's are PNG; synthetic sets may be JPEG)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the file in each folder posebowl writes a data set into, listing what it wrote there
MANIFEST = ".posebowl-files"


# -- the data folder the sandbox mounts ----------------------------------------------------------
def check_data_dir(data_dir: Path) -> None:
    """InputError unless ``data_dir`` holds ``images/`` and ``submission_format.csv``."""
    if not data_dir.is_dir():
        raise InputError(
            f"The data folder {data_dir} does not exist.",
            f"Pass --data DIR holding {IMAGES_DIR}/ and {FORMAT_CSV} "
            "(make a small one with: posebowl data sample --out data).",
        )
    if not (data_dir / FORMAT_CSV).is_file():
        raise InputError(
            f"The data folder {data_dir} has no {FORMAT_CSV}.",
            f"Put the competition's {FORMAT_CSV} there (one row per image).",
        )
    if not (data_dir / IMAGES_DIR).is_dir():
        raise InputError(
            f"The data folder {data_dir} has no {IMAGES_DIR}/ folder.",
            f"Put the test images in DATA/{IMAGES_DIR}/<image_id>.png.",
        )


def read_format(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``submission_format.csv`` read once: the table as the platform's checks read it
    (pandas' defaults) and the image ids as written (they name the image files).

    InputError when it is unreadable or does not start with ``image_id``.
    """
    from posebowl import official

    data = path.read_bytes()
    try:
        fmt = official.read(io.BytesIO(data))
        ids = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(
            f"The submission format {path} is not a readable CSV ({exc}).",
            f"Use the competition's file: {','.join(COLUMNS)}.",
        ) from exc
    if list(fmt.columns[:1]) != [INDEX_COLUMN]:
        raise InputError(
            f"{path} does not start with an {INDEX_COLUMN} column.",
            f"Use the competition's file: {','.join(COLUMNS)}.",
        )
    return fmt, ids[INDEX_COLUMN].tolist()


def zeroed_format(ids: Iterable[object]) -> pd.DataFrame:
    """The ``submission_format.csv`` table of ``ids``: every box zero, integer columns."""
    fmt = pd.DataFrame({INDEX_COLUMN: [str(i) for i in ids]})
    for col in BOX_COLUMNS:
        fmt[col] = 0
    return fmt


def image_names(images_dir: Path) -> dict[str, Path]:
    """``image_id -> path`` of every image file in ``images_dir`` (one directory scan)."""
    found: dict[str, Path] = {}
    with os.scandir(images_dir) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in IMAGE_SUFFIXES:
                found.setdefault(stem, Path(entry.path))
    return found


def image_file(images_dir: Path, image_id: str) -> Path | None:
    """The image of ``image_id`` in ``images_dir`` (any known suffix), or None."""
    for suffix in IMAGE_SUFFIXES:
        p = images_dir / f"{image_id}{suffix}"
        if p.is_file():
            return p
    return None


# -- labels and metadata -------------------------------------------------------------------------
def first_existing(root: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that is a file in ``root``."""
    return next((root / n for n in names if (root / n).is_file()), None)


def read_table(path: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Read a CSV with ``image_id`` as text, or InputError naming the file and what it lacks."""
    if not path.is_file():
        raise InputError(f"The {what} {path} does not exist.", "Check the path.")
    try:
        df = pd.read_csv(path, dtype={INDEX_COLUMN: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"The {what} {path} is not a readable CSV ({exc}).",
            f"Write plain comma-separated text with the columns {', '.join(columns)}.",
        ) from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"The {what} {path} lacks the columns {missing} (it has {list(df.columns)}).",
            f"Use the competition's layout: {', '.join(columns)}.",
        )
    return df


def read_metadata(path: str | Path) -> pd.DataFrame:
    """``image_id,spacecraft_id,background_id`` indexed by image_id (first row of each id).

    Whole-number ids stay whole numbers (``Int64``) even after reindexing with gaps.
    """
    df = read_table(Path(path), META_COLUMNS, "metadata file")
    df = df.dropna(subset=[INDEX_COLUMN]).drop_duplicates(INDEX_COLUMN)
    out = df.set_index(INDEX_COLUMN)[list(METADATA_COLUMNS)]
    for col in METADATA_COLUMNS:
        if pd.api.types.is_numeric_dtype(out[col]) and (out[col].dropna() % 1 == 0).all():
            out[col] = out[col].astype("Int64")
    return out


def metadata_beside(labels: Path) -> Path | None:
    """The metadata table beside a labels file: X_metadata.csv for X_labels.csv, else
    metadata.csv (``posebowl data sample`` writes test_labels.csv and test_metadata.csv)."""
    names = []
    if "labels" in labels.name:
        names.append(labels.name.replace("labels", "metadata"))
    names.append("metadata.csv")
    for name in names:
        candidate = labels.parent / name
        if candidate.is_file() and candidate != labels:
            return candidate
    return None


# -- ownership: never delete what posebowl did not make ------------------------------------------
def _read_manifest(folder: Path) -> set[str]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return set()
    files = data.get("files") if isinstance(data, dict) else None
    return {str(f) for f in files} if isinstance(files, list) else set()


def _walk_files(folder: Path) -> Iterator[str]:
    """Every file (and link) under ``folder`` but the manifest, as a relative posix path."""
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        for name in (*filenames, *links):
            rel = (base / name).relative_to(folder).as_posix()
            if rel != MANIFEST:
                yield rel


def _shown(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class Claim:
    """A folder posebowl may write into; :meth:`record` what it writes, :meth:`save` the list."""

    folder: Path
    files: set[str] = field(default_factory=set)

    def record(self, *paths: str | Path) -> None:
        """Note files posebowl wrote (paths relative to the folder, or under it)."""
        for p in paths:
            path = Path(p)
            rel = path.relative_to(self.folder) if path.is_absolute() else path
            self.files.add(rel.as_posix())

    def save(self) -> None:
        """Write the manifest (atomically); call it in a ``finally`` so an error keeps it."""
        data = {"written_by": "posebowl", "files": sorted(self.files)}
        tmp = self.folder / f"{MANIFEST}.partial"
        tmp.write_text(json.dumps(data, indent=0) + "\n")
        os.replace(tmp, self.folder / MANIFEST)

    @contextlib.contextmanager
    def saving(self) -> Iterator[Claim]:
        """``with claim.saving():`` writes the manifest however the block ends."""
        try:
            yield self
        finally:
            self.save()


Owned = Callable[[str], bool]  # also posebowl's: a relative path its manifest cannot list yet


def claim(
    folder: str | Path, *, force: bool, what: str = "a data set", also: Owned | None = None
) -> Claim:
    """Make ``folder`` ready for a new data set written by posebowl, losing nothing.

    A missing or empty folder is created. A folder holding anything posebowl did not write
    there is refused (InputError naming those files). A folder holding only posebowl's own
    earlier output is refused unless ``force``, which deletes exactly those files (and the
    sub-folders they leave empty). ``also`` says which other relative paths are posebowl's
    (the files of an unfinished run, recorded elsewhere than in the manifest).
    """
    return claim_all([(Path(folder), what, also)], force=force)[0]


def claim_all(
    folders: Sequence[tuple[Path, str] | tuple[Path, str, Owned | None]], *, force: bool
) -> list[Claim]:
    """:func:`claim` several ``(folder, what[, also])`` at once: every check passes before
    anything is deleted, so a refusal for one folder leaves all of them as they were."""
    plans: list[tuple[Path, list[str]]] = []
    for item in folders:
        folder, what = Path(item[0]), item[1]
        also = item[2] if len(item) > 2 else None
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} is a file, not a folder.", "Pass a folder path.")
        present = list(_walk_files(folder)) if folder.is_dir() else []
        made = _read_manifest(folder) if present else set()
        foreign = [p for p in present if p not in made and not (also and also(p))]
        if foreign:
            raise InputError(
                f"{folder} holds {len(foreign)} file(s) not made by posebowl "
                f"({_shown(foreign)}); posebowl never deletes or overwrites them.",
                "Write to another folder (a new or empty one), or move those files away first.",
            )
        if present and not force:
            raise InputError(
                f"{folder} already holds {what} made by posebowl ({len(present)} files).",
                "Pass --force to replace it, or choose another folder.",
            )
        plans.append((folder, present))
    claims = []
    for folder, present in plans:
        folder.mkdir(parents=True, exist_ok=True)
        for rel in present:
            (folder / rel).unlink()
        _remove_empty_dirs(folder)
        (folder / MANIFEST).unlink(missing_ok=True)
        claims.append(Claim(folder))
    return claims


def claim_files(folder: str | Path, names: Sequence[str]) -> Claim:
    """Make ``folder`` ready to receive the files ``names`` (relative paths), losing nothing.

    Other files in the folder are left alone; a name that exists and was not written by
    posebowl is refused. Returns a claim holding the folder's earlier manifest entries.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder.", "Pass a folder path.")
    folder.mkdir(parents=True, exist_ok=True)
    made = _read_manifest(folder)
    clash = [n for n in names if (folder / n).exists() and n not in made]
    if clash:
        raise InputError(
            f"{folder} already holds {_shown(clash)}, which posebowl did not write; posebowl "
            "never overwrites such files.",
            "Choose another output folder, or move those files away first.",
        )
    return Claim(folder, set(made))


def _remove_empty_dirs(folder: Path) -> None:
    for dirpath, _dirnames, _files in os.walk(folder, topdown=False):
        d = Path(dirpath)
        if d != folder and not d.is_symlink():
            with contextlib.suppress(OSError):
                d.rmdir()


def write_csv(claim_: Claim, name: str, df: pd.DataFrame) -> Path:
    """Write ``df`` (no index) as ``name`` in the claimed folder and record it."""
    path = claim_.folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    claim_.record(name)
    return path


def write_format(claim_: Claim, ids: Iterable[object]) -> Path:
    """Write the zeroed ``submission_format.csv`` of ``ids`` into the claimed folder."""
    return write_csv(claim_, FORMAT_CSV, zeroed_format(ids))


def write_labels(claim_: Claim, df: pd.DataFrame, *, kind: str = "train") -> list[Path]:
    """Write ``<kind>_labels.csv`` and, when ``df`` has the metadata columns,
    ``<kind>_metadata.csv`` into the claimed folder."""
    out = [write_csv(claim_, f"{kind}_labels.csv", df[list(COLUMNS)])]
    if all(c in df.columns for c in METADATA_COLUMNS):
        out.append(write_csv(claim_, f"{kind}_metadata.csv", df[list(META_COLUMNS)]))
    return out
