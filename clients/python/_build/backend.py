"""The PEP 517 build backend of clients/python (standard library only).

pip builds a package in an isolated environment into which it installs the
build backend's requirements from PyPI. This backend has none (pyproject
says requires = []), so `pip install ./clients/python` works offline, where
setuptools would have needed PyPI or --no-build-isolation.

It builds a pure-Python wheel of the top-level modules named in
[tool.llem-build] py-modules, an sdist, and an editable install (a .pth
file naming the source folder). The metadata comes from pyproject's
[project] table; only the keys used there are read.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse_toml(text):
    """The tables of a simple TOML file: string, string-list and empty-list
    values only (all pyproject.toml uses). tomllib reads it where there is
    one (Python 3.11+); this covers 3.8 to 3.10."""
    try:
        import tomllib
    except ImportError:
        pass
    else:
        return tomllib.loads(text)
    tables, cur = {}, None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if '"' not in raw else raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line)
        if m:
            cur = tables
            for part in m.group(1).split("."):
                cur = cur.setdefault(part, {})
            continue
        m = re.fullmatch(r'([A-Za-z0-9_-]+)\s*=\s*(.*)', line)
        if not m or cur is None:
            raise ValueError("pyproject.toml: cannot read %r" % raw)
        key, val = m.group(1), m.group(2).strip()
        if val.startswith("["):
            cur[key] = re.findall(r'"([^"]*)"', val)
        elif val.startswith('"'):
            cur[key] = re.fullmatch(r'"([^"]*)"(\s*#.*)?', val).group(1)
        else:
            raise ValueError("pyproject.toml: unsupported value %r" % raw)
    return tables


def _config():
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        t = _parse_toml(f.read())
    project = t["project"]
    if project.get("dependencies"):
        raise ValueError("this backend builds packages without dependencies")
    return project, t["tool"]["llem-build"]["py-modules"]


def _dist(project):
    # The distribution name as file names spell it (PEP 427, PEP 503).
    return re.sub(r"[-_.]+", "_", project["name"]).lower() + "-" + project["version"]


def _metadata(project):
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + project["name"],
        "Version: " + project["version"],
        "Summary: " + project.get("description", ""),
        "Requires-Python: " + project.get("requires-python", ""),
    ]
    body = ""
    if project.get("readme"):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(HERE, project["readme"]), encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _wheel_file():
    return "Wheel-Version: 1.0\nGenerator: llem _build/backend.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _write_wheel(directory, files):
    """Write a wheel of files (archive name -> bytes), adding RECORD."""
    project, _ = _config()
    dist = _dist(project)
    info = dist + ".dist-info/"
    files = dict(files)
    files[info + "METADATA"] = _metadata(project).encode("utf-8")
    files[info + "WHEEL"] = _wheel_file().encode("utf-8")
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(info + "RECORD,,")
    files[info + "RECORD"] = ("\n".join(record) + "\n").encode("utf-8")
    name = dist + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files.items():
            zi = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def _read(rel):
    with open(os.path.join(HERE, rel), "rb") as f:
        return f.read()


# The PEP 517 and PEP 660 hooks.

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _, modules = _config()
    return _write_wheel(wheel_directory, {m + ".py": _read(m + ".py") for m in modules})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # The source folder on sys.path: edits take effect without reinstalling.
    project, _ = _config()
    pth = re.sub(r"[-.]+", "_", project["name"]) + ".pth"
    return _write_wheel(wheel_directory, {pth: (HERE + "\n").encode("utf-8")})


def build_sdist(sdist_directory, config_settings=None):
    project, modules = _config()
    dist = _dist(project)
    members = ["pyproject.toml", "_build/backend.py"] + [m + ".py" for m in modules]
    if project.get("readme"):
        members.append(project["readme"])
    name = dist + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        def add(arc, data):
            ti = tarfile.TarInfo(dist + "/" + arc)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, int(time.time())
            tar.addfile(ti, io.BytesIO(data))
        for m in members:
            add(m, _read(m))
        add("PKG-INFO", _metadata(project).encode("utf-8"))
    return name
