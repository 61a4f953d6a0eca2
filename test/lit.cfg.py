# -*- Python -*-
# lit configuration of the Galvatron regression tests.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "Galvatron"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.galvatron_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

config.substitutions.append(("%python", config.python_executable))
# LLVM_DEBUG tracing compiled in (GALVATRON_ENABLE_TRACING).
if config.galvatron_tracing.upper() in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("tracing")
config.substitutions.append(("%galvatron_src_root", config.galvatron_src_root))
config.substitutions.append(("%galvatron_bin", config.galvatron_tools_dir))

tool_dirs = [config.galvatron_tools_dir, config.llvm_tools_dir]
tools = ["galvatron-compile", "galvatron-opt", "galvatron-plan",
         "galvatron-run", "galvatron-translate"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# Multi-rank runs: OpenMPI refuses root without these and counts cores, not
# processes, unless told to oversubscribe.
config.environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
config.environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
config.environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
# Containers often forbid the cross-process memory access OpenMPI's shared
# memory transport tries first.
config.environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
config.substitutions.append(("%mpirun", "mpirun --oversubscribe -np"))
# Keep kernel threads from competing when several processes share the cores.
config.environment["OMP_NUM_THREADS"] = "1"
config.environment["OPENBLAS_NUM_THREADS"] = "1"
