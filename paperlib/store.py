"""Every file paperlib writes or reads besides corpora: tables, configs, reference numbers and
the results store of experiment units.

- Writes are atomic (a temporary file in the same folder, then a rename), so a crash never
  leaves half a table behind.
- One convention for list-valued columns: JSON text in CSV/TSV, native lists in Parquet.
- `load_reference(name)` reads `data/references/<name>.csv` with its `#` header.
- `ResultStore` keeps one folder per experiment unit (its tables, config and provenance) in
  two layers: the user's store in the data home (read-write) and the results shipped in the
  repository's `data/results/` (read-only). A unit is found by its key, which hashes its
  inputs and its code version, so a changed unit is a miss, never a stale hit.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import pandas as pd

from paperlib.paths import data_home, shipped_dir

# --- atomic files -------------------------------------------------------------------------


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, numpy scalars and paths as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the same value always gives the same text (for hashing)."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def write_json(value: Any, path: str | Path) -> Path:
    """Write a config or record as indented JSON, atomically."""
    return atomic_write(path, json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# --- tables ---------------------------------------------------------------------------------


def _is_listlike(v: Any) -> bool:
    return isinstance(v, (list, tuple, dict)) or (hasattr(v, "tolist") and getattr(v, "ndim", 0) == 1)


def _nested_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if df[c].dtype == object and df[c].map(_is_listlike).any()]


def table_for_text(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose list and dict cells are JSON text (the CSV/TSV convention)."""
    cols = _nested_columns(df)
    if not cols:
        return df
    out = df.copy()
    for c in cols:
        out[c] = [json.dumps(to_jsonable(v.tolist() if hasattr(v, "tolist") else v), ensure_ascii=False, sort_keys=True)
                  if _is_listlike(v) else v for v in out[c]]
    return out


def table_for_parquet(df: pd.DataFrame) -> pd.DataFrame:
    """A copy Parquet can hold: lists stay native lists of strings or numbers, dicts become JSON text."""
    out = df.copy()
    for c in _nested_columns(df):
        if out[c].map(lambda v: isinstance(v, dict)).any():
            out[c] = [json.dumps(to_jsonable(v), ensure_ascii=False, sort_keys=True) if isinstance(v, dict) else v
                      for v in out[c]]
        else:
            out[c] = [list(v) if _is_listlike(v) else [] for v in out[c]]
    return out


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV, TSV or Parquet (by suffix), atomically, lists by the store's convention."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import io

        buf = io.BytesIO()
        table_for_parquet(df).to_parquet(buf, index=False)
        return atomic_write(path, buf.getvalue())
    if suffix in (".csv", ".tsv", ".txt"):
        text = table_for_text(df).to_csv(index=False, sep="\t" if suffix == ".tsv" else ",", lineterminator="\n")
        return atomic_write(path, text)
    if suffix in (".jsonl", ".json"):
        text = df.to_json(orient="records", lines=suffix == ".jsonl", force_ascii=False)
        return atomic_write(path, text + ("" if text.endswith("\n") else "\n"))
    raise ValueError(f"{path}: cannot write a table as {suffix!r}; expected .csv, .tsv, .parquet, .json or .jsonl")


def _decode_json_cells(series: pd.Series) -> pd.Series:
    """Decode a text column whose every non-empty cell is a JSON list or object."""
    cells = series.dropna()
    if cells.empty or not all(isinstance(v, str) and v[:1] in "[{" for v in cells):
        return series
    try:
        return series.map(lambda v: json.loads(v) if isinstance(v, str) else v)
    except ValueError:
        return series


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by `write_table`: JSON-text list columns come back as lists."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
        for c in df.columns:
            if df[c].dtype == object and df[c].map(lambda v: hasattr(v, "tolist")).any():
                df[c] = df[c].map(lambda v: v.tolist() if hasattr(v, "tolist") else v)
        return df
    df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False, na_values=[""])
    for c in df.columns:
        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c]):
            df[c] = _decode_json_cells(df[c])
    return df


def save_results(tables: pd.DataFrame | Mapping[str, pd.DataFrame], config: Any, folder: str | Path,
                 name: str = "results") -> Path:
    """Write tidy tables (`<name>.csv`, or `<name>_<table>.csv` for several) and `<name>.config.json`."""
    folder = Path(folder)
    if isinstance(tables, pd.DataFrame):
        tables = {name: tables}
    for key, df in tables.items():
        write_table(df, folder / (f"{name}.csv" if key == name else f"{name}_{key}.csv"))
    write_json(config, folder / f"{name}.config.json")
    return folder


def load_results(folder: str | Path, name: str = "results") -> tuple[dict[str, pd.DataFrame], dict]:
    """Tables and config written by `save_results` (a single table comes back under `name`)."""
    folder = Path(folder)
    config = read_json(folder / f"{name}.config.json")
    tables = {p.stem[len(name) + 1:]: read_table(p) for p in sorted(folder.glob(f"{name}_*.csv"))}
    if (folder / f"{name}.csv").is_file():
        tables[name] = read_table(folder / f"{name}.csv")
    if not tables:
        raise FileNotFoundError(f"no results named {name!r} in {folder}")
    return tables, config


# --- reference numbers ------------------------------------------------------------------------


def references_dir() -> Path:
    return shipped_dir() / "references"


def load_reference(name: str) -> pd.DataFrame:
    """Published numbers `data/references/<name>.csv`; the file's `#` header lines (citation,
    notes) are in `.attrs["header"]`, its path in `.attrs["source"]`."""
    path = references_dir() / f"{name}.csv"
    if not path.is_file():
        have = sorted(p.stem for p in references_dir().glob("*.csv"))
        raise FileNotFoundError(f"no reference file {path} (have: {', '.join(have)})")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    df = pd.read_csv(path, comment=None, skiprows=len([ln for ln in lines[: len(header)] if ln.startswith("#")]))
    df.attrs["header"] = "\n".join(header)
    df.attrs["source"] = str(path)
    return df


# --- the results store -------------------------------------------------------------------------


def shipped_results_dir() -> Path:
    """The read-only layer shipped with paperlib: `data/results/`."""
    return shipped_dir() / "results"


def user_results_dir() -> Path:
    """The read-write layer: `$PAPERLIB_RESULTS`, else `<data home>/store`."""
    env = os.environ.get("PAPERLIB_RESULTS")
    return Path(env).expanduser() if env else data_home() / "store"


@dataclass(frozen=True)
class UnitRecord:
    """One stored unit: what it is (experiment, key, config, seed, code version, device), where
    and when it was computed (provenance) and its tidy tables."""

    experiment: str
    key: str
    seed: int
    code_version: int
    device: str
    config: dict
    tables: dict = field(repr=False)
    provenance: dict = field(default_factory=dict)
    layer: str = ""  # the folder it was loaded from ("" when just computed)

    def header(self) -> dict:
        return {"experiment": self.experiment, "key": self.key, "seed": self.seed, "code_version": self.code_version,
                "device": self.device, "config": self.config, "tables": sorted(self.tables),
                "provenance": self.provenance}


class ResultStore:
    """Units in layers searched in order; new units go to the first writable layer.

    Layout: `<layer>/<experiment>/<key>/unit.json` plus one `<table>.csv` per table. A unit's
    folder appears whole or not at all (written aside, then renamed), so two writers of the
    same unit leave exactly one copy.
    """

    def __init__(self, *layers: str | Path, writable: str | Path | None = None):
        self.layers = [Path(p) for p in layers]
        self.writable = Path(writable) if writable is not None else (self.layers[0] if self.layers else None)
        if self.writable is not None and self.writable not in self.layers:
            self.layers.insert(0, self.writable)

    @classmethod
    def default(cls, *, shipped: bool = True) -> "ResultStore":
        """The user's store (read-write) over the shipped results (read-only)."""
        user = user_results_dir()
        return cls(user, *( [shipped_results_dir()] if shipped else []), writable=user)

    def __repr__(self) -> str:
        return f"ResultStore(layers={[str(p) for p in self.layers]}, writable={str(self.writable)!r})"

    def _folder(self, layer: Path, experiment: str, key: str) -> Path:
        return layer / experiment / key

    def get(self, experiment: str, key: str) -> UnitRecord | None:
        """The unit from the first layer that holds it, or None."""
        for layer in self.layers:
            folder = self._folder(layer, experiment, key)
            if (folder / "unit.json").is_file():
                return read_unit(folder, layer=str(layer))
        return None

    def put(self, record: UnitRecord) -> Path:
        """Store a computed unit in the writable layer (once: an existing copy is kept)."""
        if self.writable is None:
            raise PermissionError("this ResultStore has no writable layer")
        final = self._folder(self.writable, record.experiment, record.key)
        if (final / "unit.json").is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{record.key}."))
        try:
            for name, df in record.tables.items():
                write_table(df, tmp / f"{name}.csv")
            write_json(record.header(), tmp / "unit.json")
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "unit.json").is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another writer stored it first
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def records(self, experiment: str | None = None, *, layer: str | Path | None = None) -> Iterator[UnitRecord]:
        """Every unit of one layer (default: all layers), optionally of one experiment."""
        for root in ([Path(layer)] if layer is not None else self.layers):
            if not root.is_dir():
                continue
            exps = [root / experiment] if experiment else sorted(p for p in root.iterdir() if p.is_dir())
            for exp in exps:
                if not exp.is_dir():
                    continue
                for folder in sorted(exp.iterdir()):
                    if folder.name.startswith(".") or not (folder / "unit.json").is_file():
                        continue
                    yield read_unit(folder, layer=str(root))


def read_unit(folder: str | Path, *, layer: str = "") -> UnitRecord:
    """A unit folder as a `UnitRecord` (every table listed in unit.json must be there)."""
    folder = Path(folder)
    head = read_json(folder / "unit.json")
    tables = {}
    for name in head.get("tables", []):
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{folder / 'unit.json'} lists table {name!r} but {path} is missing")
        tables[name] = read_table(path)
    return UnitRecord(head["experiment"], head["key"], int(head["seed"]), int(head["code_version"]), head["device"],
                      head["config"], tables, head.get("provenance", {}), layer)
