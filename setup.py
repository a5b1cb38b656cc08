"""Builds cae_fast._C: C++ CPU kernels always, CUDA kernels when a CUDA torch and nvcc exist.

Environment:
  CAE_FAST_NO_EXT=1   build no extension (pure-PyTorch reference ops only)
  FORCE_CUDA=1        build the CUDA kernels even without a visible GPU (needs nvcc + CUDA torch)
  MAX_JOBS            parallel compile jobs (torch's own knob)
"""

import glob
import os
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _rel(pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def _nvidia_wheel_includes() -> list[str]:
    # pip's CUDA torch ships cuBLAS/cuSPARSE/... headers in nvidia-* wheels; a bare toolkit may not.
    dirs = []
    for base in sys.path:
        dirs += glob.glob(os.path.join(base, "nvidia", "*", "include"))
        dirs += glob.glob(os.path.join(base, "nvidia", "cu*", "include"))
    return sorted(set(d for d in dirs if os.path.isdir(d)))


def _want_cuda(torch, cuda_home) -> bool:
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True
    return torch.version.cuda is not None and cuda_home is not None and torch.cuda.is_available()


def _build_ext_class(base):
    """``base`` (torch's BuildExtension) that also leaves a copy of the built ``_C`` in the source
    tree's ``cae_fast/``, as an editable install does. Run from a checkout, ``python -m cae_fast.run``
    and ``pytest`` import the source package (the current directory comes first on sys.path), not
    the installed one: without the copy, README's ``pip install . && python -m cae_fast.run`` built
    the kernels and then ran on the reference ops."""

    class BuildExt(base):
        def run(self):
            super().run()
            if self.inplace:
                return
            try:
                self.copy_extensions_to_source()
            except OSError as exc:  # a read-only checkout: the installed package still has it
                print(f"cae_fast: could not copy _C into the source tree ({exc})", file=sys.stderr)

    return BuildExt


def build_config() -> dict:
    if os.environ.get("CAE_FAST_NO_EXT", "0") == "1":
        return {"install_requires": ["torch>=2.4"]}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    # A compiled extension only loads into the torch it was built against: pin that one.
    torch_req = f"torch=={torch.__version__.split('+')[0]}"
    sources = ["csrc/ops.cpp"] + _rel("csrc/cpu/*.cpp")
    cxx = ["-O3", "-g0", "-fopenmp"]
    link = ["-fopenmp"]
    if _want_cuda(torch, CUDA_HOME):
        ext = CUDAExtension(
            "cae_fast._C",
            sources + _rel("csrc/cuda/*.cu"),
            include_dirs=[os.path.join(ROOT, "csrc")] + _nvidia_wheel_includes(),
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]},
            extra_link_args=link,
        )
    else:
        ext = CppExtension(
            "cae_fast._C",
            sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            extra_compile_args={"cxx": cxx},
            extra_link_args=link,
        )
    return {
        "ext_modules": [ext],
        "cmdclass": {"build_ext": _build_ext_class(BuildExtension.with_options(use_ninja=True))},
        "install_requires": [torch_req],
    }


cfg = build_config()
setup(
    install_requires=cfg["install_requires"]
    + ["numpy>=1.24", "pillow>=9", "tqdm>=4.60", "scikit-learn>=1.2", "matplotlib>=3.6"],
    ext_modules=cfg.get("ext_modules", []),
    cmdclass=cfg.get("cmdclass", {}),
)
