"""A fresh clone installs offline into a venv made with --system-site-packages,
using Debian's setuptools (pip install --no-build-isolation .), and the
installed package runs the demo model, draws a head view and executes the seed
notebook. Slow (a whole build of the library): label "slow". Needs
ATTNVIZ_SOURCE_DIR (a git checkout; its HEAD is cloned).

The clone's CMake build goes to <clone>/build, where a checkout's own build
is, and ccache's base_dir is the clone's parent: compile lines then name
"../src/...", as in a tree built with base_dir above it, so a CI run that has
built the tree finds most objects in ccache."""

import os
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]

CHECK = r"""
import os, sys, numpy as np, nbformat
from nbclient import NotebookClient
import attnviz
assert os.path.dirname(attnviz.__file__).startswith(sys.prefix), attnviz.__file__
t = attnviz.Model().trace("This is a test")   # the demo model inside the installed package
assert t.tokens[0] == "[CLS]" and t.attentions.shape[2] == len(t.tokens), t
html = attnviz.head_view(t.to_transformers(), t.tokens, html_action="return")
assert 'class="attnviz-data"' in html.data
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "text/html" in o.get("data", {})]
assert len(outputs) == 5, len(outputs)
print("installed ok")
"""


class PipInstall(unittest.TestCase):
    def test_offline_install_into_a_venv(self):
        with tempfile.TemporaryDirectory() as folder:
            clone = os.path.join(folder, "attnviz")
            subprocess.run(["git", "clone", "--quiet", SOURCE, clone], check=True)
            venv = os.path.join(folder, "v")
            subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
            env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                       ATTNVIZ_BUILD_DIR=os.path.join(clone, "build"), CCACHE_BASEDIR=folder)
            env.pop("PYTHONPATH", None)  # only what the venv holds
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet", "--no-build-isolation", "."],
                           cwd=clone, env=env, check=True)
            # The notebook's "python3" kernel is the venv's python: Debian's kernel spec in
            # /usr/share/jupyter names /usr/bin/python3, and one in the venv comes first.
            subprocess.run([os.path.join(venv, "bin", "python"), "-m", "ipykernel", "install", "--sys-prefix"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            # It runs in an empty folder: in `folder`, the clone's directory "attnviz" would be
            # imported as a namespace package instead of the installed one.
            elsewhere = os.path.join(folder, "elsewhere")
            os.mkdir(elsewhere)
            result = subprocess.run([os.path.join(venv, "bin", "python"), "-c", CHECK,
                                     os.path.join(clone, "docs", "examples", "seed.ipynb")],
                                    cwd=elsewhere, env=env, capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("installed ok", result.stdout)


if __name__ == "__main__":
    unittest.main()
