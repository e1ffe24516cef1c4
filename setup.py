"""Builds attnviz._native with the repository's own CMake project (one build
definition for the CLI, the tests and Python): CMake configures a build folder
and builds the one target attnviz_python, whose module is copied into the
wheel. The folder is build/pip/temp.*/cmake, or ATTNVIZ_BUILD_DIR (an existing
build, e.g. build/: then only what changed is rebuilt). The bundled demo model
goes in as attnviz/demo, so attnviz.Model() works in an installed package.
Metadata: pyproject.toml."""

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
        build_dir = os.path.abspath(os.environ.get("ATTNVIZ_BUILD_DIR") or os.path.join(self.build_temp, "cmake"))
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, *generator, "-DCMAKE_BUILD_TYPE=Release",
                                   f"-DPython3_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "attnviz_python", "-j",
                               str(os.cpu_count() or 1)])
        target = self.get_ext_fullpath(ext.name)
        built = os.path.join(build_dir, "python", "attnviz", os.path.basename(target))
        if not os.path.exists(built):
            raise RuntimeError(f"{built} was not built (is {build_dir} configured for this Python, "
                               f"{sys.version.split()[0]}?)")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)


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
