"""cffi builder for ``leastconn._native`` (API mode, out of line).

setuptools runs this through ``cffi_modules`` (see ``setup.py``). It builds the static
``libleastconn.a`` of the enclosing checkout with cargo, then derives the cdef from the
header that same build generated (``$OUT_DIR/leastconn.h``, which a test keeps equal to the
checked-in ``include/leastconn.h``), so struct layouts, functions and
status codes are never copied by hand: a field or status code added to the C ABI reaches
Python on the next install. The extension links the static library, so the wheel needs no
``libleastconn.so`` at run time.

Environment: ``CARGO`` (the cargo to run, default ``cargo``), ``CARGO_TARGET_DIR`` (honoured
by cargo itself), ``LEASTCONN_CARGO_PROFILE`` (default ``release``).
"""

import json
import os
import re
import subprocess
from pathlib import Path
from typing import List, Tuple

from cffi import FFI

HERE = Path(__file__).resolve().parent

# The Python functions the library calls back; their userdata is a cffi handle.
CALLBACKS = """
extern "Python" lc_status _lc_py_source(void *userdata, struct lc_upstream_list *list);
extern "Python" void _lc_py_free(void *userdata);
extern "Python" void _lc_py_stats(void *userdata, const char *address,
                                  const struct lc_host_stats *stats);
extern "Python" void _lc_py_log(void *userdata, lc_log_level level, const char *message);
"""


def find_crate_root() -> Path:
    """The checkout's root: the nearest parent holding the leastconn Cargo.toml."""
    for parent in HERE.parents:
        manifest = parent / "Cargo.toml"
        if manifest.is_file() and re.search(
            r'^name\s*=\s*"leastconn"', manifest.read_text(), re.MULTILINE
        ):
            return parent
    raise RuntimeError(
        f"no leastconn Cargo.toml above {HERE}: install from a checkout "
        "(pip install ./bindings/python)"
    )


def build_library(root: Path) -> Tuple[Path, Path]:
    """Runs cargo for the library; returns the paths of libleastconn.a and of the header
    that same build generated (`$OUT_DIR/leastconn.h`), read from cargo's JSON messages."""
    profile = os.environ.get("LEASTCONN_CARGO_PROFILE", "release")
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "build", "--lib", "--locked", "--profile", profile]
    cmd.append("--message-format=json-render-diagnostics")
    run = subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.PIPE, text=True)
    messages = [json.loads(line) for line in run.stdout.splitlines()]
    # Only artifacts name their manifest; the build script's output names the package.
    ours = {m["package_id"] for m in messages if m.get("manifest_path") == str(root / "Cargo.toml")}
    static_lib = header = None
    for msg in messages:
        if msg.get("package_id") not in ours:
            continue
        if msg.get("reason") == "build-script-executed":
            header = Path(msg["out_dir"]) / "leastconn.h"
        elif msg.get("reason") == "compiler-artifact":
            static_lib = next((Path(f) for f in msg["filenames"] if f.endswith(".a")), static_lib)
    if static_lib is None or header is None or not header.is_file():
        raise RuntimeError(f"cargo built no libleastconn.a and header in {root}")
    return static_lib, header


def native_libs(root: Path) -> List[str]:
    """What the Rust standard library needs from the system when linked statically: the
    ``-l`` flags of ``Libs.private`` in ``leastconn.pc.in``, the project's one list of them."""
    pc = root / "leastconn.pc.in"
    for line in pc.read_text().splitlines():
        if line.startswith("Libs.private:"):
            return [flag[len("-l") :] for flag in line.split()[1:] if flag.startswith("-l")]
    raise RuntimeError(f"no Libs.private line in {pc}")


def cdef_from_header(text: str) -> str:
    """Turns the cbindgen header into a cdef cffi can parse.

    Drops comments, the C++ guards and every preprocessor line except `#define NAME value`,
    whose value becomes `...` (the compiler supplies it, so negative or computed values
    need no parsing here).
    """
    text = re.sub(r"#ifdef __cplusplus.*?#endif[^\n]*\n", "", text, flags=re.DOTALL)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            define = re.match(r"#define\s+([A-Z_][A-Z0-9_]*)\s+\S", stripped)
            if define:
                lines.append(f"#define {define.group(1)} ...")
            continue
        lines.append(line)
    return "\n".join(lines) + CALLBACKS


ROOT = find_crate_root()
STATIC_LIB, HEADER = build_library(ROOT)

ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header(HEADER.read_text()))
ffibuilder.set_source(
    "leastconn._native",
    '#include "leastconn.h"',
    include_dirs=[str(HEADER.parent)],
    extra_objects=[str(STATIC_LIB)],
    libraries=native_libs(ROOT),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
