"""Build of the optional compiled loops (rs_change._kernels); everything else is in pyproject.toml.

The extension is optional: where it cannot be compiled (no C compiler), the install goes on and
rs-change runs its numpy path, with the same results (rs_change/kernels.py).
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all
            self.warn(f"rs_change._kernels not built ({exc}); rs-change will run its numpy path")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # a compiler error
            self.warn(f"rs_change._kernels not built ({exc}); rs-change will run its numpy path")


# no fused multiply-add and no fast-math: the float32 results must be numpy's bit for bit
FLAGS = ["/O2", "/fp:precise", "/std:c11"] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-fast-math"]

setup(
    ext_modules=[Extension("rs_change._kernels", ["rs_change/_kernels.c"], extra_compile_args=FLAGS, optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
