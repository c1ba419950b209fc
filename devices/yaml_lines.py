"""File lines for a YAML document's nodes, so that a problem in a long file names the line it is on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

#: A place in the document: mapping keys and sequence indexes from the root.
YamlPath = tuple[str | int, ...]


def node_lines(node: yaml.Node, path: YamlPath = ()) -> Iterator[tuple[YamlPath, int]]:
    """Every node's place and 1-based line."""
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from node_lines(value, (*path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from node_lines(item, (*path, index))


def line_of_path(lines: dict[YamlPath, int], path: YamlPath) -> int:
    """The line of the deepest node on ``path`` that exists in the file (a missing key: its parent's line)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


def pydantic_path(loc: tuple[Any, ...]) -> YamlPath:
    """A validation error's location as a place in the file."""
    # Union members and validators add non-key parts such as 'date' or 'function-after[...]'; keep only keys
    # and indexes that can exist in the file.
    return tuple(part for part in loc if isinstance(part, int) or "[" not in str(part))
