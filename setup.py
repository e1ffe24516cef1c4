"""Builds attnviz._native with the repository's own CMake project (one build
definition for the CLI, the tests and Python): CMake configures into
build/temp.*/cmake and builds the attnviz_python target straight into the
wheel's attnviz/ folder. The bundled demo model goes in as attnviz/demo, so
attnviz.Model() works in an installed package. Metadata: pyproject.toml."""

import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        package_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        os.makedirs(build_dir, exist_ok=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, *generator, "-DCMAKE_BUILD_TYPE=Release",
                               f"-DPython3_EXECUTABLE={sys.executable}",
                               f"-DATTNVIZ_PYTHON_PACKAGE_DIR={package_dir}"])
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "attnviz_python", "-j",
                               str(os.cpu_count() or 1)])


class BuildWithDemoModel(build_py):
    def run(self):
        super().run()
        demo = os.path.join(ROOT, "models", "demo")
        if os.path.isdir(demo):
            shutil.copytree(demo, os.path.join(self.build_lib, "attnviz", "demo"), dirs_exist_ok=True)


# build/pip: beside the CMake build folders, not inside the project's build/ tree.
setup(ext_modules=[Extension("attnviz._native", sources=[])],
      cmdclass={"build_ext": CMakeBuild, "build_py": BuildWithDemoModel},
      options={"build": {"build_base": os.path.join("build", "pip")}})
