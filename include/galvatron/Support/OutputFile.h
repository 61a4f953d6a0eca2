//===- OutputFile.h - Output files whose every write is checked -*- C++ -*-===//
//
// LLVM's output streams report a failed write (a full disk, /dev/full) only
// when they are destroyed, as "LLVM ERROR: IO failure on output stream".
// Tools and passes finish their files here instead: the failure becomes an
// error naming the file, and a partly written file is removed.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_SUPPORT_OUTPUTFILE_H
#define GALVATRON_SUPPORT_OUTPUTFILE_H

#include "llvm/Support/Error.h"

namespace llvm {
class ToolOutputFile;
} // namespace llvm

namespace mlir::galvatron {

/// Flushes `file` and keeps it when every write reached it; otherwise
/// returns "cannot write 'FILE': CAUSE" and lets the file be removed.
llvm::Error keepOutputFile(llvm::ToolOutputFile &file);

/// Flushes llvm::outs(); fails when something written there was lost.
llvm::Error flushStandardOutput();

} // namespace mlir::galvatron

#endif // GALVATRON_SUPPORT_OUTPUTFILE_H
