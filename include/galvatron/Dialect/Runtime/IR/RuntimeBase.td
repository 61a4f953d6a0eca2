//===- RuntimeBase.td - The grt dialect and its enums ------*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEBASE_TD
#define GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/IR/AttrTypeBase.td"

def Grt_Dialect : Dialect {
  let name = "grt";
  let cppNamespace = "::mlir::galvatron::grt";
  let summary = "Per-stage runtime programs: an arena and scheduled blocks";
  let description = [{
    A `grt.executable` holds the device-group families of a job
    (`grt.group`) and one `grt.program` per pipeline stage, which every
    rank of the stage runs. A program first declares its buffers, each a
    statically shaped `memref` at a byte offset in the rank's arena
    (temporaries, inputs, parameters, constants, and views that reinterpret
    another buffer's bytes), then its instructions (directly, or in
    `grt.block`s and a `grt.schedule`), then binds its outputs. Buffers are
    numbered in declaration order; the number is a buffer's name in the
    program file. Integers that differ between the ranks of a stage carry
    `#grt.term`s.
  }];
  let dependentDialects = ["::mlir::galvatron::GalvatronDialect"];
  let useDefaultAttributePrinterParser = 1;
}

class Grt_Op<string mnemonic, list<Trait> traits = []>
    : Op<Grt_Dialect, mnemonic, traits>;

class Grt_Attr<string name, string attrMnemonic>
    : AttrDef<Grt_Dialect, name> {
  let mnemonic = attrMnemonic;
}

def Grt_ReduceKind : I32EnumAttr<"ReduceKind", "reduction of a collective", [
    I32EnumAttrCase<"sum", 0>,
    I32EnumAttrCase<"max", 1>,
    I32EnumAttrCase<"min", 2>,
    I32EnumAttrCase<"avg", 3>
  ]> {
  let cppNamespace = "::mlir::galvatron::grt";
}

def Grt_Buffer : StaticShapeMemRefOf<[F32, F16, BF16, I64, I32, I1]>;

#endif // GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEBASE_TD
