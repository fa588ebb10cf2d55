"""The one compiled part: checker/_native.c (the visited set's hash table and liveness's
graph algorithms), built by pip with the machine's C compiler; everything else is in
pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("checker._native", sources=["checker/_native.c"], extra_compile_args=["-O2", "-std=c99"])
    ]
)
