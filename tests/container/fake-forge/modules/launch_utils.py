"""The stand-in's part of Forge's modules/launch_utils.py that images/forge/Dockerfile calls after
the prepare step: requirements_met(file), True when every `name==version` pin in the file is the
installed version (Forge compares the same way, with packaging's version parsing)."""
import importlib.metadata
import re


def requirements_met(requirements_file):
    for line in open(requirements_file, encoding="utf8"):
        m = re.match(r"\s*([-_.a-zA-Z0-9]+)\s*==\s*([-+_.a-zA-Z0-9]+)", line.split("#")[0])
        if not m:
            continue
        try:
            if importlib.metadata.version(m.group(1)) != m.group(2):
                return False
        except importlib.metadata.PackageNotFoundError:
            return False
    return True
