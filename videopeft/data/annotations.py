"""Annotation readers for SSv2, HMDB51, Kinetics and list files, and the layouts' file names.

Readers return `(records, class_names)` with class indices that match the official ones, as
mmaction2 builds them (open-mmlab/mmaction2: tools/data/parse_file_list.py): SSv2 from
something-something-v2-labels.json, HMDB51 from the sorted class names, Kinetics from the sorted
train labels. A malformed annotation raises `ConfigError` with one line naming the file, the
line (or JSON entry) and the problem.

The file names below are the one definition of each layout on disk: the readers look for them
and the synthetic writer (`videopeft.data.synthetic`) writes them. A torch-free module.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from videopeft.constants import LAYOUTS, SPLITS
from videopeft.errors import ConfigError, check, did_you_mean, one_of

__all__ = ["VideoRecord", "read_annotations", "VIDEO_EXTENSIONS", "SSV2_PREFIX",
           "SSV2_SPLIT_FILES", "SSV2_LABELS_FILE", "ssv2_class_name", "ssv2_video_name",
           "HMDB_SPLITS", "HMDB_SPLIT_CODES", "HMDB_SPLIT_MARK", "hmdb_split_suffix",
           "KINETICS_SPLIT_FILES", "KINETICS_FIELDS", "kinetics_label", "kinetics_video_name",
           "LIST_SPLIT_FILES", "LIST_CLASSES_FILE", "LIST_FORMAT", "annotation_files",
           "guess_layout", "folder_summary"]

VIDEO_EXTENSIONS = (".webm", ".mp4", ".avi", ".mkv", ".mov", ".m4v")

# Something-Something-v2: JSON lists of {id, template, ...} and the template -> index map
SSV2_PREFIX = "something-something-v2"
SSV2_SPLIT_FILES = {"train": f"{SSV2_PREFIX}-train.json", "val": f"{SSV2_PREFIX}-validation.json"}
SSV2_LABELS_FILE = f"{SSV2_PREFIX}-labels.json"

# HMDB51: `<class>_test_split{1,2,3}.txt`, lines "<clip>.avi <code>"; code 0 = in neither split
HMDB_SPLITS = (1, 2, 3)
HMDB_SPLIT_CODES = {"train": 1, "val": 2}
HMDB_SPLIT_MARK = "_test_split"

# Kinetics: CSVs whose header starts with these fields (newer releases add split, is_cc)
KINETICS_SPLIT_FILES = {"train": "train.csv", "val": "validate.csv"}
KINETICS_FIELDS = ("label", "youtube_id", "time_start", "time_end")

# the VideoMAE/AdaptFormer list, the first of each split's names found, with classes.txt beside it
LIST_SPLIT_FILES = {split: (f"{split}.txt", f"{split}.csv") for split in SPLITS}
LIST_CLASSES_FILE = "classes.txt"
LIST_FORMAT = """\
one video per line: <path> <label> [<class name>]
  columns: separated by a tab, or else by any run of spaces (with tabs a path may hold spaces)
  path:    relative to data.root, or absolute
  label:   the class index (0-based), or a class name listed in classes.txt
  class name (optional): checked against classes.txt; without classes.txt it names the index
classes.txt beside the list: one class name per line, line k = class k; blank lines ignored"""


def ssv2_class_name(template: str) -> str:
    """An SSv2 class name: its template without the brackets (the labels file's keys)."""
    return template.replace("[", "").replace("]", "")


def ssv2_video_name(video_id: str) -> str:
    """The file of SSv2 video `video_id` under the root."""
    return f"{video_id}.webm"


def hmdb_split_suffix(split_number: int) -> str:
    """What the split files of official split `split_number` end with, after the class name."""
    return f"{HMDB_SPLIT_MARK}{split_number}.txt"


def kinetics_label(raw: str) -> str:
    """mmaction2's class name: quotes removed, spaces to underscores."""
    return raw.replace('"', "").replace(" ", "_")


def kinetics_video_name(youtube_id: str, time_start: int, time_end: int) -> str:
    """The file of one Kinetics clip, under its class folder."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


@dataclass(frozen=True)
class VideoRecord:
    """One video of an annotation: its file and its 0-based class index."""

    path: str
    label: int


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"expected {' or '.join(map(repr, SPLITS))}, got {split!r}",
                          key="split")


def guess_layout(folder: Path) -> str | None:
    """The layout whose files `folder` holds (None when it holds none of them)."""
    if not folder.is_dir():
        return None
    names = {p.name for p in folder.iterdir()}
    if names & {SSV2_LABELS_FILE, *SSV2_SPLIT_FILES.values()}:
        return "ssv2"
    if any(HMDB_SPLIT_MARK in n and n.endswith(".txt") for n in names):
        return "hmdb51"
    for name in KINETICS_SPLIT_FILES.values():
        if name in names:
            with (folder / name).open() as handle:
                if handle.readline().startswith(",".join(KINETICS_FIELDS)):
                    return "kinetics"
    if names & {n for files in LIST_SPLIT_FILES.values() for n in files}:
        return "list"
    return None


def folder_summary(folder: Path, limit: int = 4) -> str:
    """'holds train.txt, val.txt, classes.txt' (the first few names), or 'is empty'."""
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return "is empty"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"holds {', '.join(names[:limit])}{more}"


def _not_found(path: Path, layout: str, what: str = "annotation file not found") -> ConfigError:
    """A missing annotation file; when its folder holds another layout's files, say which."""
    folder = path if path.is_dir() else path.parent
    hint = ""
    if folder.is_dir():
        guess = guess_layout(folder)
        hint = f"; the folder {folder_summary(folder)}"
        if guess and guess != layout:
            hint += f": layout {guess}?"
    return ConfigError(f"{what} for layout {layout}{hint}", where=str(path))


def _existing_file(path: Path, layout: str) -> Path:
    if not path.is_file():
        raise _not_found(path, layout)
    return path


def _load_json(path: Path) -> object:
    """Parse an SSv2 JSON file; syntax errors name the file and line."""
    try:
        return json.loads(_existing_file(path, "ssv2").read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"invalid JSON: {err.msg}", where=f"{path}:{err.lineno}") from None


def _ssv2_class_map(path: Path) -> dict[str, int]:
    """something-something-v2-labels.json: template without brackets -> class index string."""
    labels = _load_json(path)
    if not isinstance(labels, dict):
        raise ConfigError("expected a mapping of template -> class index", where=str(path))
    out: dict[str, int] = {}
    for template, index in labels.items():
        if not (isinstance(index, str) and index.isdigit()):
            raise ConfigError(f"template {template!r}: expected a class index string, "
                              f"got {index!r}", where=str(path))
        out[template] = int(index)
    if sorted(out.values()) != list(range(len(out))):
        raise ConfigError(f"class indices must be 0..{len(out) - 1}, each used once",
                          where=str(path))
    return out


def _ssv2_files(annotation: Path, split: str) -> tuple[Path, Path]:
    """(the split's JSON list, the labels file)."""
    folder = annotation.parent if annotation.is_file() else annotation
    split_file = annotation if annotation.is_file() else folder / SSV2_SPLIT_FILES[split]
    return split_file, folder / SSV2_LABELS_FILE


def _read_ssv2(root: Path, annotation: Path, split: str) -> tuple[list[VideoRecord], list[str]]:
    split_file, labels_file = _ssv2_files(annotation, split)
    class_map = _ssv2_class_map(labels_file)
    entries = _load_json(split_file)
    if not isinstance(entries, list):
        raise ConfigError("expected a JSON list of videos", where=str(split_file))
    records = []
    for i, entry in enumerate(entries):
        where = f"{split_file}: entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"expected an object, got {type(entry).__name__}", where=where)
        for key in ("id", "template"):
            if key not in entry:
                raise ConfigError(f"missing field {key!r}", where=where)
        template = ssv2_class_name(str(entry["template"]))
        if template not in class_map:
            raise ConfigError(f"template {template!r} not in {SSV2_LABELS_FILE}", where=where)
        records.append(VideoRecord(str(root / ssv2_video_name(entry["id"])), class_map[template]))
    names = sorted(class_map, key=class_map.get)
    return records, names


def _hmdb51_files(annotation: Path, hmdb_split: int) -> tuple[Path, list[Path]]:
    """(the folder, its split files of official split `hmdb_split`, sorted: one per class)."""
    folder = annotation.parent if annotation.is_file() else annotation
    return folder, sorted(folder.glob(f"*{hmdb_split_suffix(hmdb_split)}"))


def _read_hmdb51(root: Path, annotation: Path, split: str,
                 hmdb_split: int) -> tuple[list[VideoRecord], list[str]]:
    check(one_of("hmdb_split", hmdb_split, HMDB_SPLITS))
    suffix = hmdb_split_suffix(hmdb_split)
    folder, files = _hmdb51_files(annotation, hmdb_split)
    if not files:
        raise _not_found(folder, "hmdb51", f"no '*{suffix}' split files")
    classes = [f.name[:-len(suffix)] for f in files]  # sorted names = mmaction2's class index
    want, records = HMDB_SPLIT_CODES[split], []
    for label, (name, path) in enumerate(zip(classes, files)):
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            where = f"{path}:{lineno}"
            if len(parts) != 2:
                raise ConfigError(f"expected '<clip>.avi <split code>', got {line.strip()!r}",
                                  where=where)
            clip, code = parts
            if code not in ("0", "1", "2"):
                raise ConfigError(f"unknown split code {code!r} (expected 0, 1 or 2)",
                                  where=where)
            if int(code) == want:
                records.append(VideoRecord(str(root / name / clip), label))
    return records, classes


def _read_kinetics_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a Kinetics CSV, header checked."""
    rows = []
    with _existing_file(path, "kinetics").open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if tuple(header[:4]) != KINETICS_FIELDS:
            raise ConfigError(f"expected header starting '{','.join(KINETICS_FIELDS)}', "
                              f"got {','.join(header)!r}", where=f"{path}:1")
        for row in reader:
            if not row:
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) != len(header):
                raise ConfigError(f"expected {len(header)} fields, got {len(row)}", where=where)
            values = dict(zip(header, row))
            for key in ("time_start", "time_end"):
                if not values[key].strip().isdigit():
                    raise ConfigError(f"expected an integer, got {values[key]!r}", key=key,
                                      where=where)
            rows.append((reader.line_num, values))
    return rows


def _kinetics_files(annotation: Path, split: str) -> tuple[Path, Path]:
    """(the split's CSV, the train CSV whose labels define the classes)."""
    folder = annotation.parent if annotation.is_file() else annotation
    split_file = annotation if annotation.is_file() else folder / KINETICS_SPLIT_FILES[split]
    return split_file, folder / KINETICS_SPLIT_FILES["train"]


def _read_kinetics(root: Path, annotation: Path,
                   split: str) -> tuple[list[VideoRecord], list[str]]:
    split_file, train_file = _kinetics_files(annotation, split)
    train_rows = _read_kinetics_csv(train_file)
    classes = sorted({kinetics_label(row["label"]) for _, row in train_rows})
    index = {name: i for i, name in enumerate(classes)}
    rows = train_rows if split_file == train_file else _read_kinetics_csv(split_file)
    records = []
    for lineno, row in rows:
        label = kinetics_label(row["label"])
        if label not in index:
            raise ConfigError(f"label {label!r} not in the class map (the labels of "
                              f"{train_file.name})", where=f"{split_file}:{lineno}")
        name = kinetics_video_name(row["youtube_id"], int(row["time_start"]),
                                   int(row["time_end"]))
        records.append(VideoRecord(str(root / label / name), index[label]))
    return records, classes


def _list_files(annotation: Path, split: str) -> tuple[Path, Path]:
    """(the split's list file, the classes.txt beside it, which may be absent)."""
    if annotation.is_file():
        path = annotation
    else:
        candidates = [annotation / name for name in LIST_SPLIT_FILES[split]]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    return path, path.parent / LIST_CLASSES_FILE


def _list_columns(line: str) -> list[str]:
    """A list line's columns: split at tabs when it has any (paths may then hold spaces), else
    at any run of spaces."""
    if "\t" in line:
        return [c.strip() for c in line.strip().split("\t") if c.strip()]
    return line.split()


def _class_names(classes_file: Path) -> list[str]:
    """classes.txt: one class name per line, in index order (blank lines ignored)."""
    if not classes_file.is_file():
        return []
    return [ln.strip() for ln in classes_file.read_text().splitlines() if ln.strip()]


def _list_label(raw: str, classes: list[str], classes_file: Path, where: str) -> int:
    """A list line's label: an integer index, or a class name of classes.txt."""
    if raw.isdigit():
        label = int(raw)
        if classes and label >= len(classes):
            raise ConfigError(f"label {label} not in the class map ({classes_file.name} has "
                              f"{len(classes)} classes)", where=where)
        return label
    if raw.lstrip("-").isdigit():
        raise ConfigError(f"expected a non-negative integer or a class name, got {raw!r}",
                          key="label", where=where)
    if raw.lower().endswith(VIDEO_EXTENSIONS):
        raise ConfigError(f"expected a label, got {raw!r} (a path with spaces? separate the "
                          f"columns with a tab)", where=where)
    if not classes:
        raise ConfigError(f"label {raw!r} is a class name, but there is no {classes_file.name} "
                          f"beside the list to number the classes (write {classes_file}, one "
                          f"class per line in index order, or give integer labels)", where=where)
    if raw not in classes:
        more = f", ... ({len(classes)} in all)" if len(classes) > 5 else ""
        hint = did_you_mean(raw, classes) or f" (its classes: {', '.join(classes[:5])}{more})"
        raise ConfigError(f"label {raw!r} is not a class of {classes_file}{hint}", where=where)
    return classes.index(raw)


def _read_list(root: Path, annotation: Path, split: str) -> tuple[list[VideoRecord], list[str]]:
    """A list file: ``<path> <label> [<class name>]`` per line (`LIST_FORMAT`)."""
    path, classes_file = _list_files(annotation, split)
    classes = _class_names(classes_file)
    records, named = [], {}  # named: index -> the class name a third column gave it
    for lineno, line in enumerate(_existing_file(path, "list").read_text().splitlines(), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        columns = _list_columns(line)
        if len(columns) < 2:
            raise ConfigError(f"expected '<path> <label>', got {line!r}", where=where)
        if len(columns) > 3:
            tab = "" if "\t" in line else " (a path with spaces? separate the columns with a tab)"
            raise ConfigError(f"expected '<path> <label> [<class name>]', got {len(columns)} "
                              f"columns{tab}", where=where)
        label = _list_label(columns[1], classes, classes_file, where)
        if len(columns) == 3:
            name = columns[2]
            known = classes[label] if classes else named.setdefault(label, name)
            if name != known:
                source = classes_file.name if classes else "an earlier line"
                raise ConfigError(f"class name {name!r} for label {label}, but {source} names it "
                                  f"{known!r}", where=where)
        video = Path(columns[0])
        records.append(VideoRecord(str(video if video.is_absolute() else root / video), label))
    if not classes:
        classes = [named.get(i, str(i))
                   for i in range(max((r.label for r in records), default=-1) + 1)]
    return records, classes


def _annotation_path(root: str | os.PathLike, annotation: str | os.PathLike) -> Path:
    """`annotation`, or `root` when it is empty."""
    return Path(annotation) if str(annotation) else Path(root)


def read_annotations(layout: str, root: str | os.PathLike, annotation: str | os.PathLike,
                     split: str, hmdb_split: int = 1) -> tuple[list[VideoRecord], list[str]]:
    """Videos and class names of one split ("train" | "val") of a dataset on disk.

    `annotation` is the annotation file or the folder holding the layout's files (the names
    defined above); empty means `root`. A list folder may hold `classes.txt`, one class per line.
    """
    check(one_of("layout", layout, LAYOUTS))
    _check_split(split)
    root_path, ann = Path(root), _annotation_path(root, annotation)
    if layout == "ssv2":
        return _read_ssv2(root_path, ann, split)
    if layout == "hmdb51":
        return _read_hmdb51(root_path, ann, split, hmdb_split)
    if layout == "kinetics":
        return _read_kinetics(root_path, ann, split)
    return _read_list(root_path, ann, split)


def annotation_files(layout: str, root: str | os.PathLike, annotation: str | os.PathLike,
                     split: str, hmdb_split: int = 1) -> list[Path]:
    """The files `read_annotations` reads for one split (split list first, then the class map),
    those that exist: what a run record hashes to say which annotation a run used."""
    check(one_of("layout", layout, LAYOUTS))
    _check_split(split)
    ann = _annotation_path(root, annotation)
    if layout == "ssv2":
        files = list(_ssv2_files(ann, split))
    elif layout == "hmdb51":
        files = _hmdb51_files(ann, hmdb_split)[1]
    elif layout == "kinetics":
        files = list(dict.fromkeys(_kinetics_files(ann, split)))
    else:
        files = list(_list_files(ann, split))
    return [f for f in files if f.is_file()]
