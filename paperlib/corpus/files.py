"""Reading the corpus side's hand-edited files: YAML with line numbers for error messages, and
JSON hand labels."""
from __future__ import annotations

import json
from pathlib import Path

import yaml


def line_loader(error: type[Exception]) -> type[yaml.SafeLoader]:
    """A SafeLoader that records each mapping's line as `__line__` (and its keys' lines as
    `__keylines__`) and raises `error(path, line, message)` on a duplicate key."""

    class LineLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise error(self.name, key_node.start_mark.line + 1,
                                f"duplicate key {key!r} (first on line {seen[key]})")
                seen[key] = key_node.start_mark.line + 1
            mapping = super().construct_mapping(node, deep=deep)
            mapping["__line__"] = node.start_mark.line + 1
            mapping["__keylines__"] = seen
            return mapping

    return LineLoader


def load_yaml_with_lines(text: str, source, error: type[Exception]):
    """One YAML document read with `line_loader(error)`; invalid YAML raises `error(source, line,
    "not valid YAML: ...")`."""
    loader = line_loader(error)(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(source, line, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def read_json_labels(path: str | Path):
    """A hand-label file's JSON, or a ValueError naming the file (and the line, when it is not JSON)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read gold labels: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: not valid JSON: {exc.msg}") from None
