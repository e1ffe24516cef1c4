"""docs/examples/seed.ipynb live in classic Jupyter Notebook (Debian's
jupyter-notebook, 6.4), served on 127.0.0.1 only, driven by headless Chromium
(classic_notebook.test.mjs): cells run, views draw and answer a hover, and draw
again after save and reload. Needs ATTNVIZ_SOURCE_DIR; the kernel inherits
PYTHONPATH."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
NOTEBOOK = os.path.join(SOURCE, "docs", "examples", "seed.ipynb")
BROWSER_TEST = os.path.join(SOURCE, "tests", "python", "classic_notebook.test.mjs")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ClassicNotebook(unittest.TestCase):
    def test_seed_notebook_runs_and_draws(self):
        server_program = shutil.which("jupyter-notebook")
        self.assertIsNotNone(server_program, "jupyter-notebook is missing: run tools/setup")
        with tempfile.TemporaryDirectory() as folder:
            shutil.copy(NOTEBOOK, folder)
            port = free_port()
            env = dict(os.environ, JUPYTER_CONFIG_DIR=os.path.join(folder, "config"),
                       JUPYTER_DATA_DIR=os.path.join(folder, "data"), JUPYTER_RUNTIME_DIR=os.path.join(folder, "rt"),
                       IPYTHONDIR=os.path.join(folder, "ipython"))
            server = subprocess.Popen(
                [server_program, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
                 "--NotebookApp.token=", "--NotebookApp.password=", "--allow-root", f"--notebook-dir={folder}"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}/notebooks/seed.ipynb"
                for _ in range(120):  # the server is up when it answers (at most a minute)
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2).read()
                        break
                    except OSError:
                        self.assertIsNone(server.poll(), "jupyter-notebook exited")
                        time.sleep(0.5)
                result = subprocess.run([shutil.which("node"), BROWSER_TEST, url], capture_output=True, text=True,
                                        timeout=300)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("classic notebook: ok", result.stdout)
            finally:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    unittest.main()
