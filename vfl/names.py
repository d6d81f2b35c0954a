"""Names that become file and directory names at some party: party names, job names, data aliases."""
from __future__ import annotations

import re

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RULE = "1-64 letters, digits, '_', '.', '-', not starting with '_', '.' or '-'"


def is_safe_name(value) -> bool:
    return isinstance(value, str) and SAFE_NAME.match(value) is not None
