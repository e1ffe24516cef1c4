"""docs/examples/seed.ipynb executes headless (nbclient, Debian's ipykernel),
converts to HTML (nbconvert), and its views draw and answer a hover in
headless Chromium (notebook.test.mjs). The same fragment also draws inside a
sandboxed iframe (allow-scripts only, an opaque origin), as VS Code and Colab
show outputs. Needs ATTNVIZ_SOURCE_DIR; the kernel inherits PYTHONPATH."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import html as html_escape

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

sys.path.insert(0, os.path.dirname(__file__))
import attnviz  # noqa: E402
from page_payload import payloads  # noqa: E402

SOURCE = os.environ["ATTNVIZ_SOURCE_DIR"]
NOTEBOOK = os.path.join(SOURCE, "docs", "examples", "seed.ipynb")
BROWSER_TEST = os.path.join(SOURCE, "tests", "python", "notebook.test.mjs")


class SeedNotebook(unittest.TestCase):
    def test_executes_converts_and_draws(self):
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()
        html_outputs = [output["data"]["text/html"] for cell in notebook.cells if cell.cell_type == "code"
                        for output in cell.get("outputs", []) if "text/html" in output.get("data", {})]
        views = [payloads(output)[0]["meta"]["views"] for output in html_outputs]
        self.assertEqual(views, [["head"], ["model"], ["head"], ["model"], ["head"]])
        with tempfile.TemporaryDirectory() as folder:
            executed = os.path.join(folder, "seed.ipynb")
            nbformat.write(notebook, executed)
            # Saved and reopened: the outputs are self-contained HTML.
            reopened = nbformat.read(executed, as_version=4)
            body, _ = HTMLExporter().from_notebook_node(reopened)
            page = os.path.join(folder, "seed.html")
            with open(page, "w", encoding="utf-8") as out:
                out.write(body)
            sandboxed = os.path.join(folder, "sandboxed.html")
            with open(sandboxed, "w", encoding="utf-8") as out:
                out.write('<!DOCTYPE html><html><body><iframe sandbox="allow-scripts" width="1100" height="700" '
                          f'srcdoc="{html_escape.escape(html_outputs[0], quote=True)}"></iframe></body></html>')
            node = shutil.which("node")
            self.assertIsNotNone(node, "node is missing: run tools/setup")
            result = subprocess.run([node, BROWSER_TEST, page, sandboxed], capture_output=True, text=True,
                                    timeout=240)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("notebook views: ok", result.stdout)


if __name__ == "__main__":
    unittest.main()
