//===- ONNXModel.h - A parsed ONNX model and its tensor data ----*- C++ -*-===//
//
// Reads an ONNX file with the protobuf classes of Debian's libonnx-dev
// (onnx-ml.pb.h, linked against libonnx_proto) and gives the importer
// validated access to tensor contents: embedded data, external data files
// (confined to the model's folder), and where an initializer's bytes lie so
// that parameters can reference them instead of copying them.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_TARGET_ONNX_ONNXMODEL_H
#define GALVATRON_LIB_TARGET_ONNX_ONNXMODEL_H

#include "HostTensor.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MemoryBuffer.h"

#include "onnx/onnx_pb.h"

#include <memory>
#include <string>

namespace mlir::galvatron::onnx_import {

/// The supported range of the default domain's opset.
constexpr int64_t kMinOpset = 13;
constexpr int64_t kMaxOpset = 17;

/// Where the bytes of a tensor live, relative to the model's folder.
struct TensorLocation {
  /// File holding the bytes: the model itself or an external data file.
  std::string location;
  /// Byte range in that file; length -1 when the bytes are not stored
  /// contiguously (typed protobuf fields), so only `key` finds them.
  int64_t offset = 0, length = -1;
  /// Set for tensors stored inside the model file: the initializer's name.
  std::string key;
};

/// Raw little-endian bytes of a tensor, owned or borrowed.
struct RawBytes {
  llvm::StringRef data;
  std::unique_ptr<llvm::MemoryBuffer> owner;
};

class ONNXModel {
public:
  /// Parses an ONNX model. `fileName` is how parameters name the model file
  /// (relative to `directory`, where external data paths resolve); an empty
  /// `directory` refuses external data.
  static llvm::Expected<std::unique_ptr<ONNXModel>>
  parse(llvm::StringRef bytes, std::string fileName, std::string directory);

  const onnx::ModelProto &proto() const { return model; }
  const onnx::GraphProto &graph() const { return model.graph(); }
  const std::string &fileName() const { return modelFileName; }
  /// The version of the default (ai.onnx) domain's opset.
  int64_t defaultOpset() const { return opset; }
  /// The opset version a domain is imported with, or -1.
  int64_t opsetOf(llvm::StringRef domain) const;

  /// The contents of a tensor, checked against its type and shape.
  HostResult decode(const onnx::TensorProto &tensor) const;
  /// Where a tensor's bytes lie (for parameters).
  llvm::Expected<TensorLocation> locate(const onnx::TensorProto &tensor) const;
  /// The raw bytes of a tensor stored as raw data (embedded or external).
  llvm::Expected<RawBytes> rawBytes(const onnx::TensorProto &tensor) const;
  /// Shape of a tensor, rejecting negative dimensions.
  static llvm::Expected<llvm::SmallVector<int64_t>>
  tensorShape(const onnx::TensorProto &tensor);

private:
  struct ExternalFile {
    std::string location, path;
    int64_t offset, length;
  };
  llvm::Expected<ExternalFile> resolveExternal(const onnx::TensorProto &tensor,
                                               int64_t expectedBytes) const;
  /// Records the file offsets of initializers' raw_data / packed float_data.
  void scanEmbeddedRanges(llvm::StringRef bytes);

  onnx::ModelProto model;
  std::string modelFileName, directory;
  int64_t opset = 0;
  /// Initializer name -> (offset, length) of its contiguous bytes in the file.
  llvm::StringMap<std::pair<int64_t, int64_t>> embeddedRanges;
};

} // namespace mlir::galvatron::onnx_import

#endif // GALVATRON_LIB_TARGET_ONNX_ONNXMODEL_H
