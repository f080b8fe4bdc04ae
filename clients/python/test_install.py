"""pip install ./clients/python works offline, in a fresh virtual
environment, and installs the same modules as the source folder."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_build"))
import backend  # noqa: E402

MODULES = ["llem_events", "llem_transformers", "llem_vllm"]


def venv_python(tmp):
    """A fresh venv with pip, or None and why when this Python has none."""
    env_dir = os.path.join(tmp, "venv")
    try:
        import venv  # noqa: F401
        import ensurepip  # noqa: F401  (Debian: python3-venv)
    except ImportError as e:
        return None, "no venv/ensurepip (%s): apt-get install python3-venv" % e
    r = subprocess.run([sys.executable, "-m", "venv", env_dir], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "python3 -m venv failed: %s" % (r.stdout + r.stderr).strip()[-500:]
    return os.path.join(env_dir, "bin", "python"), None


class InstallTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="llem-pip")
        self.addCleanup(shutil.rmtree, self.tmp)

    def venv(self):
        py, why = venv_python(self.tmp)
        if py is None:
            if os.environ.get("LLEM_REQUIRE_VENV"):  # CI installs python3-venv
                self.fail(why + " (LLEM_REQUIRE_VENV is set, as in CI)")
            print("\nskipped: %s" % why, file=sys.stderr)
            self.skipTest(why)
        return py

    def pip(self, py, *args):
        # No index at all: the install must need nothing from PyPI.
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        env.pop("PYTHONPATH", None)
        r = subprocess.run([py, "-m", "pip", *args], capture_output=True, text=True, env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, "pip %s:\n%s%s" % (" ".join(args), r.stdout, r.stderr))

    def run_py(self, py, code):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.pop("LLEM_EVENTS", None)
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_pip_install_offline(self):
        py = self.venv()
        self.pip(py, "install", "--no-cache-dir", HERE)
        out = self.run_py(py, "import os, llem_events, llem_transformers, llem_vllm as v\n"
                              "for m in (llem_events, llem_transformers, v): print(m.__file__)\n"
                              "llem_events.mark('nothing: LLEM_EVENTS is unset')")
        files = out.split()
        self.assertEqual(len(files), 3)
        for f, m in zip(files, MODULES):
            self.assertIn("site-packages", f)  # the installed copy, not this folder
            with open(f, "rb") as a, open(os.path.join(HERE, m + ".py"), "rb") as b:
                self.assertEqual(a.read(), b.read(), m)
        show = subprocess.run([py, "-m", "pip", "show", "-f", "llem-events"], capture_output=True, text=True)
        self.assertIn("Version: 0.1.0", show.stdout)
        self.assertNotIn("test_", show.stdout)  # tests and the backend are not installed
        self.assertNotIn("backend.py", show.stdout)
        self.pip(py, "uninstall", "-y", "llem-events")
        r = subprocess.run([py, "-c", "import llem_events"], capture_output=True, text=True, cwd=self.tmp)
        self.assertNotEqual(r.returncode, 0)

    def test_editable_install(self):
        py = self.venv()
        self.pip(py, "install", "--no-cache-dir", "-e", HERE)
        out = self.run_py(py, "import llem_vllm; print(llem_vllm.__file__)")
        self.assertEqual(out.strip(), os.path.join(HERE, "llem_vllm.py"))


class BackendTest(unittest.TestCase):
    def test_toml_fallback_reads_pyproject_as_tomllib_does(self):
        with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        try:
            import tomllib
        except ImportError:
            self.skipTest("no tomllib (Python < 3.11) to compare with")
        saved = sys.modules.get("tomllib")
        sys.modules["tomllib"] = None  # the fallback parser, as on 3.8 to 3.10
        try:
            mine = backend._parse_toml(text)
        finally:
            sys.modules["tomllib"] = saved
        self.assertEqual(mine, tomllib.loads(text))

    def test_sdist_and_wheel_contents(self):
        import tarfile
        import zipfile
        tmp = tempfile.mkdtemp(prefix="llem-build")
        self.addCleanup(shutil.rmtree, tmp)
        whl = backend.build_wheel(tmp)
        self.assertEqual(whl, "llem_events-0.1.0-py3-none-any.whl")
        with zipfile.ZipFile(os.path.join(tmp, whl)) as z:
            names = sorted(z.namelist())
            record = z.read("llem_events-0.1.0.dist-info/RECORD").decode()
        self.assertEqual(names, sorted([m + ".py" for m in MODULES] + [
            "llem_events-0.1.0.dist-info/" + n for n in ("METADATA", "WHEEL", "RECORD")]))
        self.assertEqual(len(record.splitlines()), len(names))
        sd = backend.build_sdist(tmp)
        with tarfile.open(os.path.join(tmp, sd)) as t:
            members = set(t.getnames())
        for m in MODULES + ["_build/backend", "pyproject", "README", "PKG-INFO"]:
            self.assertTrue(any(n.startswith("llem_events-0.1.0/" + m) for n in members), m)


if __name__ == "__main__":
    unittest.main()
